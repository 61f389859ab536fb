"""Documents as PDF: ``render.py`` turns the plain data of ``workflow.receipts`` into PDF/A files."""
