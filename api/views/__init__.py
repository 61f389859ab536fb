"""The HTML pages, one blueprint per audience (window, agency, supervisor, admin, public)."""
