"""The ledger's write throughput (issue 3): a single post in one round trip on PostgreSQL,
fewer checks and index entries per row written.

`ledger_post(…)` does on the server what `ledger/service.py` does on SQLite, with the same
refusals and the accounts locked in the same (id) order: a repeated key returns the original;
the accounts are locked and checked (open, currency, floor) before anything is written, so a
refusal writes nothing and needs no savepoint; then the transaction, the totals and the
postings. `ledger_accounts` gets room on its pages (fillfactor) for the totals' updates.

The postings' references (to their transaction, and to their account in its currency) are
checked once per statement, set-wise, instead of by a foreign key's query per row: a
statement-level trigger on PostgreSQL, a row trigger on SQLite. What a foreign key also
guarantees, that the referred row never goes away or changes its key, triggers guarantee on
the other side: a transaction is never deleted and keeps its id; a ledger account is never
deleted (it is closed) and keeps its id and currency.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LEDGER_POST_ARGS = (
    "character varying, character varying, character varying, character varying, "
    "character varying, text, character varying, character varying, character varying, "
    "character varying, bigint, bigint, timestamp with time zone, timestamp with time zone, "
    "character varying, jsonb, bigint[], character varying[], bigint[]"
)

# Outcomes: 'existing' (the key is known: `transaction_id` is its transaction; nothing written
# or locked), 'refused' (`refused_account` is missing, closed, keeps another currency or would go
# below its floor: nothing written) and 'created' (`transaction_id` is the new transaction; the
# caller knows the rest of the row, having sent it).
_LEDGER_POST = """
CREATE FUNCTION ledger_post(
    p_public_id varchar, p_key varchar, p_fingerprint varchar, p_kind varchar, p_status varchar,
    p_description text, p_counterparty varchar, p_member varchar, p_category varchar,
    p_reference varchar, p_corrects bigint, p_resolves bigint, p_effective_at timestamptz,
    p_created_at timestamptz, p_created_by varchar, p_details jsonb,
    p_accounts bigint[], p_currencies varchar[], p_amounts bigint[],
    OUT outcome text, OUT refused_account bigint, OUT transaction_id bigint
) LANGUAGE plpgsql AS $$
DECLARE
    v_pending boolean := p_status = 'pending';
    v_leg record;
    v_account ledger_accounts;
    v_ids bigint[] := '{}';
    v_debits bigint[] := '{}';
    v_credits bigint[] := '{}';
    v_available bigint;
    v_i integer;
BEGIN
    -- A repeat is answered before any lock is taken.
    SELECT t.id INTO transaction_id FROM ledger_transactions AS t WHERE t.idempotency_key = p_key;
    IF FOUND THEN
        outcome := 'existing';
        RETURN;
    END IF;
    -- Lock and check every account first, in id order like every other writer, so that a
    -- refusal leaves nothing to undo.
    FOR v_leg IN
        SELECT u.account_id,
               sum(greatest(u.amount, 0))::bigint AS debit,
               sum(greatest(-u.amount, 0))::bigint AS credit,
               array_agg(DISTINCT u.currency) AS currencies
        FROM unnest(p_accounts, p_currencies, p_amounts) AS u(account_id, currency, amount)
        GROUP BY u.account_id
        ORDER BY u.account_id
    LOOP
        SELECT * INTO v_account FROM ledger_accounts WHERE id = v_leg.account_id FOR UPDATE;
        IF NOT FOUND OR v_account.status <> 'open'
                OR v_leg.currencies <> ARRAY[v_account.currency] THEN
            outcome := 'refused';
            refused_account := v_leg.account_id;
            RETURN;
        END IF;
        IF v_account.floor_minor IS NOT NULL THEN
            IF v_pending THEN
                v_account.debits_pending := v_account.debits_pending + v_leg.debit;
                v_account.credits_pending := v_account.credits_pending + v_leg.credit;
            ELSE
                v_account.debits_posted := v_account.debits_posted + v_leg.debit;
                v_account.credits_posted := v_account.credits_posted + v_leg.credit;
            END IF;
            IF v_account.type IN ('asset', 'expense') THEN
                v_available := v_account.debits_posted - v_account.credits_posted
                    - v_account.credits_pending;
            ELSE
                v_available := v_account.credits_posted - v_account.debits_posted
                    - v_account.debits_pending;
            END IF;
            IF v_available < v_account.floor_minor THEN
                outcome := 'refused';
                refused_account := v_leg.account_id;
                RETURN;
            END IF;
        END IF;
        v_ids := v_ids || v_leg.account_id;
        v_debits := v_debits || v_leg.debit;
        v_credits := v_credits || v_leg.credit;
    END LOOP;
    INSERT INTO ledger_transactions (
        public_id, idempotency_key, fingerprint, kind, status, description, counterparty_ref,
        member_ref, category, reference, corrects_id, resolves_id, effective_at, created_at,
        created_by, resolved_at, details
    ) VALUES (
        p_public_id, p_key, p_fingerprint, p_kind, p_status, p_description, p_counterparty,
        p_member, p_category, p_reference, p_corrects, p_resolves, p_effective_at, p_created_at,
        p_created_by, NULL, p_details
    )
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id INTO transaction_id;
    IF NOT FOUND THEN
        -- A concurrent post of the same key committed while this one waited for a lock.
        SELECT t.id INTO transaction_id FROM ledger_transactions AS t
        WHERE t.idempotency_key = p_key;
        outcome := 'existing';
        RETURN;
    END IF;
    -- The accounts are locked and checked; the floor CHECK constraint still guards the rows.
    -- One UPDATE by id per account: a join with the arrays would be planned once for all
    -- calls, and may scan the accounts.
    FOR v_i IN 1 .. cardinality(v_ids) LOOP
        IF v_pending THEN
            UPDATE ledger_accounts SET
                debits_pending = debits_pending + v_debits[v_i],
                credits_pending = credits_pending + v_credits[v_i]
            WHERE id = v_ids[v_i];
        ELSE
            UPDATE ledger_accounts SET
                debits_posted = debits_posted + v_debits[v_i],
                credits_posted = credits_posted + v_credits[v_i]
            WHERE id = v_ids[v_i];
        END IF;
    END LOOP;
    -- In the legs' order, which is the postings' id order that captures read back.
    INSERT INTO ledger_postings (
        transaction_id, account_id, currency, amount_minor, pending, effective_at
    )
    SELECT transaction_id, u.account_id, u.currency, u.amount, v_pending, p_effective_at
    FROM unnest(p_accounts, p_currencies, p_amounts) WITH ORDINALITY
        AS u(account_id, currency, amount, n)
    ORDER BY u.n;
    outcome := 'created';
END
$$
"""


_FK_TRANSACTION = "fk_ledger_postings_transaction_id_ledger_transactions"
_FK_ACCOUNT = "fk_ledger_postings_account_currency"

_PG_POSTINGS_REFER = """
CREATE FUNCTION ledger_postings_refer() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_missing text;
BEGIN
    -- Scalar subqueries rather than NOT EXISTS: they stay one index probe per distinct value,
    -- whatever size of statement the plan (made once per session) was first made for, instead
    -- of becoming an anti-join that may scan the whole ledger.
    SELECT n.transaction_id::text INTO v_missing
    FROM (SELECT DISTINCT transaction_id FROM new_postings) AS n
    WHERE (SELECT t.id FROM ledger_transactions AS t WHERE t.id = n.transaction_id) IS NULL
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger postings refer to transaction %, which does not exist', v_missing
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    SELECT n.account_id || ' in ' || n.currency INTO v_missing
    FROM (SELECT DISTINCT account_id, currency FROM new_postings) AS n
    WHERE (
        SELECT a.id FROM ledger_accounts AS a WHERE a.id = n.account_id AND a.currency = n.currency
    ) IS NULL
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'ledger postings refer to account %, which does not exist', v_missing
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$
"""
_PG_ACCOUNTS_KEEP_IDENTITY = """
CREATE FUNCTION ledger_refuse_account_rekey() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'ledger accounts are never deleted: close the account';
    END IF;
    IF NEW.id <> OLD.id OR NEW.currency <> OLD.currency THEN
        RAISE EXCEPTION 'a ledger account keeps its id and currency';
    END IF;
    RETURN NEW;
END
$$
"""
_PG_TRANSACTION_CHANGE = (
    "CREATE OR REPLACE FUNCTION ledger_refuse_transaction_change() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ BEGIN "
    "IF TG_OP = 'DELETE' OR OLD.status <> 'pending' OR NEW.status = 'pending' "
    "OR NEW.fingerprint <> OLD.fingerprint OR NEW.idempotency_key <> OLD.idempotency_key "
    "OR NEW.effective_at <> OLD.effective_at{} THEN "
    "RAISE EXCEPTION 'ledger transactions are immutable once posted: post a correction'; "
    "END IF; RETURN NEW; END $$"
)
_SQLITE_POSTINGS_REFER = (
    "CREATE TRIGGER ledger_postings_refer BEFORE INSERT ON ledger_postings "
    "WHEN NOT EXISTS (SELECT 1 FROM ledger_transactions WHERE id = NEW.transaction_id) "
    "OR NOT EXISTS (SELECT 1 FROM ledger_accounts "
    "WHERE id = NEW.account_id AND currency = NEW.currency) BEGIN "
    "SELECT RAISE(ABORT, 'ledger postings refer to an existing transaction, and to an "
    "existing account in its currency'); END"
)
_SQLITE_ACCOUNTS_KEEP_IDENTITY = {
    "ledger_accounts_no_delete": "BEFORE DELETE ON ledger_accounts BEGIN "
    "SELECT RAISE(ABORT, 'ledger accounts are never deleted: close the account'); END",
    "ledger_accounts_keep_identity": "BEFORE UPDATE OF id, currency ON ledger_accounts "
    "WHEN NEW.id <> OLD.id OR NEW.currency <> OLD.currency BEGIN "
    "SELECT RAISE(ABORT, 'a ledger account keeps its id and currency'); END",
}
# The triggers of 0002 on the tables SQLite rebuilds here (a rebuild drops a table's triggers).
_SQLITE_POSTINGS_IMMUTABLE = {
    "ledger_postings_no_update": "BEFORE UPDATE ON ledger_postings BEGIN "
    "SELECT RAISE(ABORT, 'ledger postings are immutable: post a correction'); END",
    "ledger_postings_no_delete": "BEFORE DELETE ON ledger_postings BEGIN "
    "SELECT RAISE(ABORT, 'ledger postings are immutable: post a correction'); END",
}
_SQLITE_TRANSACTION_CHANGE = (
    "CREATE TRIGGER ledger_transactions_no_update BEFORE UPDATE ON ledger_transactions "
    "WHEN OLD.status <> 'pending' OR NEW.status = 'pending' "
    "OR NEW.fingerprint <> OLD.fingerprint OR NEW.idempotency_key <> OLD.idempotency_key "
    "OR NEW.effective_at <> OLD.effective_at{} BEGIN "
    "SELECT RAISE(ABORT, 'ledger transactions are immutable once posted: post a correction'); END"
)
_KEEPS_ITS_ID = " OR NEW.id <> OLD.id"


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute(_LEDGER_POST)
        # Every post rewrites its accounts' rows: room on the page keeps that a HOT update,
        # which touches none of the table's five indexes.
        op.execute("ALTER TABLE ledger_accounts SET (fillfactor = 50)")
    _upgrade_indexes()
    if postgres:
        _upgrade_references_postgresql()
    else:
        _upgrade_references_sqlite()


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        _downgrade_references_postgresql()
    else:
        _downgrade_references_sqlite()
    _downgrade_indexes()
    if postgres:
        op.execute("ALTER TABLE ledger_accounts RESET (fillfactor)")
        op.execute(f"DROP FUNCTION IF EXISTS ledger_post({_LEDGER_POST_ARGS})")


def _upgrade_indexes() -> None:
    """No query looks transactions up by member; almost none corrects another."""
    with op.batch_alter_table("ledger_transactions", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_transactions_member_ref")
        batch_op.drop_index("ix_ledger_transactions_corrects_id")
        batch_op.create_index(
            "ix_ledger_transactions_corrects_id",
            ["corrects_id"],
            unique=False,
            postgresql_where=sa.text("corrects_id IS NOT NULL"),
            sqlite_where=sa.text("corrects_id IS NOT NULL"),
        )


def _downgrade_indexes() -> None:
    with op.batch_alter_table("ledger_transactions", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_transactions_corrects_id")
        batch_op.create_index("ix_ledger_transactions_corrects_id", ["corrects_id"], unique=False)
        batch_op.create_index("ix_ledger_transactions_member_ref", ["member_ref"], unique=False)


def _upgrade_references_postgresql() -> None:
    op.drop_constraint(_FK_TRANSACTION, "ledger_postings", type_="foreignkey")
    op.drop_constraint(_FK_ACCOUNT, "ledger_postings", type_="foreignkey")
    op.execute(_PG_POSTINGS_REFER)
    op.execute(
        "CREATE TRIGGER ledger_postings_refer AFTER INSERT ON ledger_postings "
        "REFERENCING NEW TABLE AS new_postings "
        "FOR EACH STATEMENT EXECUTE FUNCTION ledger_postings_refer()"
    )
    op.execute(_PG_ACCOUNTS_KEEP_IDENTITY)
    # Only statements that name id or currency fire it: the totals' updates never do.
    op.execute(
        "CREATE TRIGGER ledger_accounts_keep_identity BEFORE UPDATE OF id, currency OR DELETE "
        "ON ledger_accounts FOR EACH ROW EXECUTE FUNCTION ledger_refuse_account_rekey()"
    )
    op.execute(_PG_TRANSACTION_CHANGE.format(_KEEPS_ITS_ID))


def _downgrade_references_postgresql() -> None:
    op.execute(_PG_TRANSACTION_CHANGE.format(""))
    op.execute("DROP TRIGGER IF EXISTS ledger_accounts_keep_identity ON ledger_accounts")
    op.execute("DROP FUNCTION IF EXISTS ledger_refuse_account_rekey()")
    op.execute("DROP TRIGGER IF EXISTS ledger_postings_refer ON ledger_postings")
    op.execute("DROP FUNCTION IF EXISTS ledger_postings_refer()")
    op.create_foreign_key(
        _FK_ACCOUNT,
        "ledger_postings",
        "ledger_accounts",
        ["account_id", "currency"],
        ["id", "currency"],
    )
    op.create_foreign_key(
        _FK_TRANSACTION, "ledger_postings", "ledger_transactions", ["transaction_id"], ["id"]
    )


def _upgrade_references_sqlite() -> None:
    # SQLite drops a constraint by rebuilding the table, and the rebuild drops its triggers.
    for trigger in _SQLITE_POSTINGS_IMMUTABLE:
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    with op.batch_alter_table("ledger_postings", schema=None) as batch_op:
        batch_op.drop_constraint(_FK_TRANSACTION, type_="foreignkey")
        batch_op.drop_constraint(_FK_ACCOUNT, type_="foreignkey")
    for trigger, body in _SQLITE_POSTINGS_IMMUTABLE.items():
        op.execute(f"CREATE TRIGGER {trigger} {body}")
    op.execute(_SQLITE_POSTINGS_REFER)
    for trigger, body in _SQLITE_ACCOUNTS_KEEP_IDENTITY.items():
        op.execute(f"CREATE TRIGGER {trigger} {body}")
    op.execute("DROP TRIGGER IF EXISTS ledger_transactions_no_update")
    op.execute(_SQLITE_TRANSACTION_CHANGE.format(_KEEPS_ITS_ID))


def _downgrade_references_sqlite() -> None:
    op.execute("DROP TRIGGER IF EXISTS ledger_transactions_no_update")
    op.execute(_SQLITE_TRANSACTION_CHANGE.format(""))
    for trigger in _SQLITE_ACCOUNTS_KEEP_IDENTITY:
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TRIGGER IF EXISTS ledger_postings_refer")
    for trigger in _SQLITE_POSTINGS_IMMUTABLE:
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    with op.batch_alter_table("ledger_postings", schema=None) as batch_op:
        batch_op.create_foreign_key(
            _FK_ACCOUNT, "ledger_accounts", ["account_id", "currency"], ["id", "currency"]
        )
        batch_op.create_foreign_key(
            _FK_TRANSACTION, "ledger_transactions", ["transaction_id"], ["id"]
        )
    for trigger, body in _SQLITE_POSTINGS_IMMUTABLE.items():
        op.execute(f"CREATE TRIGGER {trigger} {body}")
