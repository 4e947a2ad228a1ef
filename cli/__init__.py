"""How the command-line programs start: logging once, user errors as exit code 2."""
