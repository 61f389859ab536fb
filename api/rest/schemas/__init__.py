"""Marshmallow schemas of the REST API: they translate, nothing more."""
