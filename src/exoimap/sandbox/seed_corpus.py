"""Word pools for :mod:`exoimap.sandbox.seed` (invented names and text, several languages).

Kept apart from the generator so the logic stays readable. Everything here is plain data;
nothing is copied from real mail.
"""

# Real names and subjects use letters ruff finds ambiguous (dotless i, en dash): on purpose.
# ruff: noqa: RUF001

from __future__ import annotations

__all__ = [
    "ATTACHMENT_TYPES",
    "FIRST_NAMES",
    "LAST_NAMES",
    "SUBJECT_TOPICS",
    "SUBJECT_VERBS",
    "USER_FOLDERS",
    "WORDS",
    "NON_ASCII_SUBJECTS",
    "NEWSLETTER_SENDERS",
]

FIRST_NAMES = (
    "Adele", "Alex", "Bianca", "Chen", "Dmitri", "Elif", "François", "Grady", "Hana",
    "Isaiah", "Jörg", "Katarzyna", "Lee", "Lidia", "Megan", "Nestor", "Oksana", "Pradeep",
    "Quentin", "Renée", "Sakura", "Søren", "Tomás", "Umar", "Valérie", "Wei", "Xóchitl",
    "Yusuf", "Zoë", "Ålesund", "Miriam", "Joni", "Patti", "Lynne", "Diego",
)  # fmt: skip

LAST_NAMES = (
    "Vance", "Müller", "Nakamura", "Kowalski", "O'Brien", "García", "Øster", "Dubois",
    "Ivanova", "Sharma", "Lindqvist", "Rossi", "Yılmaz", "Papadopoulos", "Nguyen", "Smith",
    "Fernández", "Hoffmann", "Jensen", "Petrov", "Tanaka", "Brown", "Łukasik", "Sørensen",
)  # fmt: skip

SUBJECT_VERBS = (
    "Update on", "Question about", "Draft:", "Notes from", "Reminder:", "Review of",
    "Proposal for", "Follow-up:", "Agenda for", "Feedback on", "Invoice for", "Plan for",
    "Summary of", "Status of", "Decision on", "Request:",
)  # fmt: skip

SUBJECT_TOPICS = (
    "the Q3 budget", "project Contoso Falcon", "the offsite", "onboarding", "the release",
    "vendor contracts", "the board meeting", "travel expenses", "the migration",
    "customer escalation #4411", "hiring plan", "security review", "the roadmap",
    "the audit", "office move", "licence renewal", "the newsletter", "training week",
    "the data centre", "marketing launch", "support rota", "the API redesign",
)  # fmt: skip

NON_ASCII_SUBJECTS = (
    "Besprechung über die Übergabe",
    "Réunion d'équipe : ordre du jour",
    "Informe trimestral – año fiscal",
    "Отчёт за квартал",
    "会議の議事録",
    "Spotkanie zespołu – żółta strefa",
    "Ψηφιακή μετάβαση",
    "Çalışma planı ve bütçe",
    "Kvartalsrapport för Ørestad",
    "予算の確認 ✅",
    "Zürich ↔ München Reiseplan",
)  # fmt: skip

NEWSLETTER_SENDERS = (
    ("Contoso Weekly", "news@contoso-weekly.example"),
    ("Fabrikam Updates", "updates@fabrikam.example"),
    ("Tailspin Deals", "deals@tailspin.example"),
    ("Northwind Digest", "digest@northwind.example"),
)

# Names follow the mailbox's language in Exchange; a mix shows non-ASCII handling.
USER_FOLDERS = (
    "Projects",
    "Projects/Falcon",
    "Projects/Zürich",
    "Receipts",
    "Équipe",
    "Отчёты",
    "共有",
    "Archive/2023",
)

WORDS = (
    "the", "team", "we", "will", "need", "to", "review", "plan", "before", "next", "week",
    "please", "find", "attached", "numbers", "for", "our", "customer", "meeting", "and",
    "let", "me", "know", "if", "anything", "is", "missing", "budget", "timeline", "risk",
    "agreed", "schedule", "call", "tomorrow", "morning", "update", "document", "shared",
    "draft", "final", "version", "comments", "thanks", "again", "quick", "question",
    "about", "release", "notes", "server", "migration", "weekend", "deadline", "owner",
    "contract", "signed", "invoice", "payment", "approval", "manager", "travel", "hotel",
    "flight", "agenda", "slides", "minutes", "action", "items", "follow", "up", "status",
    "green", "amber", "red", "priority", "ticket", "escalation", "support", "backlog",
    "sprint", "demo", "feedback", "proposal", "estimate", "cost", "savings", "quarter",
    "growth", "forecast", "pipeline", "partner", "vendor", "licence", "renewal", "security",
    "audit", "compliance", "policy", "training", "onboarding", "access", "laptop",
    "Übersicht", "Straße", "größer", "café", "naïve", "résumé", "façade", "jalapeño",
    "smörgåsbord", "Ærø", "łódź", "çok", "данные", "отчёт", "データ", "確認",
)  # fmt: skip

# (extension, content type, magic prefix) of common attachment types.
ATTACHMENT_TYPES: tuple[tuple[str, str, bytes], ...] = (
    ("pdf", "application/pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"),
    ("jpg", "image/jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01"),
    ("png", "image/png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
    (
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        b"PK\x03\x04\x14\x00\x06\x00",
    ),
    (
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        b"PK\x03\x04\x14\x00\x06\x00",
    ),
    (
        "pptx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        b"PK\x03\x04\x14\x00\x06\x00",
    ),
    ("zip", "application/zip", b"PK\x03\x04\x0a\x00\x00\x00"),
    ("ics", "text/calendar", b""),
    ("csv", "text/csv", b""),
    ("txt", "text/plain", b""),
)
