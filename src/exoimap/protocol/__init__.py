"""Sans-I/O IMAP protocol core: bytes in, events out."""
