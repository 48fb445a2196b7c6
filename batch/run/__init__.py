"""Running a verb on a file: read → validate → journal → send → record."""
