"""a revision that always fails: it adds a column that exists already"""

from alembic import op

revision = "r4"
down_revision = "r3"


def upgrade() -> None:
    op.execute("ALTER TABLE items ADD COLUMN name text")


def downgrade() -> None:
    pass
