"""The search index over the archives: FTS5 over headers and decoded text, kept up to date
by ``sync`` and read by the console.

``query``
    The search syntax, parsed (no SQL).
``documents``
    What is indexed of one message.
``index``
    All the SQL: the schema, writing, and scoped searches.
``catchup``
    Bringing the index up to date with an archive.
"""

from exoimap.store.search.catchup import CatchUp, update_search
from exoimap.store.search.documents import Document, header_text, read_document
from exoimap.store.search.index import (
    FolderMark,
    Hit,
    Reach,
    Results,
    SearchIndex,
    SearchScope,
    index_path,
)
from exoimap.store.search.query import Query, SearchSyntaxError, parse_query

__all__ = [
    "CatchUp",
    "Document",
    "FolderMark",
    "Hit",
    "Query",
    "Reach",
    "Results",
    "SearchIndex",
    "SearchScope",
    "SearchSyntaxError",
    "header_text",
    "index_path",
    "parse_query",
    "read_document",
    "update_search",
]
