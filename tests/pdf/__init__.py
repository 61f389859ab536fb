"""Tests of the receipts, the acceptance slip and their verification."""
