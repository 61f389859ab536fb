"""The REST API (``/api/v1``): flask-smorest blueprints, one module per resource."""
