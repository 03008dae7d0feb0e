"""The ledger's write throughput: a single post in one round trip on PostgreSQL.

`ledger_post(…)` does on the server what `ledger/service.py` does on SQLite, in the same order
of locks and with the same refusals: a repeated key returns the original; the accounts are
locked in id order and checked (open, currency, floor) before anything is written, so a refusal
writes nothing and needs no savepoint; then the transaction, the totals and the postings.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

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

# Outcomes: 'existing' (the key is known: `txn` is that row, nothing written or locked),
# 'refused' (`refused_account` is missing, closed, keeps another currency or would go below its
# floor: nothing written) and 'created' (`txn` is the new row).
_LEDGER_POST = """
CREATE FUNCTION ledger_post(
    p_public_id varchar, p_key varchar, p_fingerprint varchar, p_kind varchar, p_status varchar,
    p_description text, p_counterparty varchar, p_member varchar, p_category varchar,
    p_reference varchar, p_corrects bigint, p_resolves bigint, p_effective_at timestamptz,
    p_created_at timestamptz, p_created_by varchar, p_details jsonb,
    p_accounts bigint[], p_currencies varchar[], p_amounts bigint[],
    OUT outcome text, OUT refused_account bigint, OUT txn ledger_transactions
) LANGUAGE plpgsql AS $$
DECLARE
    v_pending boolean := p_status = 'pending';
    v_leg record;
    v_account ledger_accounts;
    v_ids bigint[] := '{}';
    v_debits bigint[] := '{}';
    v_credits bigint[] := '{}';
    v_available bigint;
BEGIN
    -- A repeat is answered before any lock is taken.
    SELECT * INTO txn FROM ledger_transactions WHERE idempotency_key = p_key;
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
    RETURNING * INTO txn;
    IF NOT FOUND THEN
        -- A concurrent post of the same key committed while this one waited for a lock.
        SELECT * INTO txn FROM ledger_transactions WHERE idempotency_key = p_key;
        outcome := 'existing';
        RETURN;
    END IF;
    -- The accounts are locked and checked; the floor CHECK constraint still guards the rows.
    UPDATE ledger_accounts AS a SET
        debits_posted = a.debits_posted + CASE WHEN v_pending THEN 0 ELSE t.debit END,
        credits_posted = a.credits_posted + CASE WHEN v_pending THEN 0 ELSE t.credit END,
        debits_pending = a.debits_pending + CASE WHEN v_pending THEN t.debit ELSE 0 END,
        credits_pending = a.credits_pending + CASE WHEN v_pending THEN t.credit ELSE 0 END
    FROM unnest(v_ids, v_debits, v_credits) AS t(account_id, debit, credit)
    WHERE a.id = t.account_id;
    -- In the legs' order, which is the postings' id order that captures read back.
    INSERT INTO ledger_postings (
        transaction_id, account_id, currency, amount_minor, pending, effective_at
    )
    SELECT txn.id, u.account_id, u.currency, u.amount, v_pending, p_effective_at
    FROM unnest(p_accounts, p_currencies, p_amounts) WITH ORDINALITY
        AS u(account_id, currency, amount, n)
    ORDER BY u.n;
    outcome := 'created';
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_LEDGER_POST)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS ledger_post({_LEDGER_POST_ARGS})")
