"""Mails acknowledged by the data team as delivered otherwise (issue #19): a depublication
waits for its warning, delivered when its mail left or when the data team, on the health
page, acknowledged that the commune was told otherwise (« Avertissement transmis
autrement »).

Revision ID: 0004
Revises: 0003
Create Date: 2027-01-05 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mail_acknowledgements",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("dataset", sa.String(length=80), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=250), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_index(
        op.f("ix_mail_acknowledgements_dataset"),
        "mail_acknowledgements",
        ["dataset"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_mail_acknowledgements_dataset"), table_name="mail_acknowledgements")
    op.drop_table("mail_acknowledgements")
