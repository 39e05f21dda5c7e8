"""Form files: loading and checking forms/ (instruments, protocols, scripts, intake, consent,
ratings) and the gettext extractor for them.

Imports only store and base."""
