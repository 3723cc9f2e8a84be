"""The application database: SQLAlchemy models, the session factory, migrations."""
