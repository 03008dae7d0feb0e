"""The bank core's usual authorisations in batches on PostgreSQL (issue 5's throughput goal).

Every authorisation to one payee credits the payee's payable ledger account, so every checkout
of a partner's shop locked that one row from `bank_authorise_hold`'s hold to its commit, the WAL
flush included: sampled during the checkout benchmark, 11 to 18 sessions at a time queued on it
(`Lock:transactionid`, `Lock:tuple`) and the checkouts went no faster than one such transaction
after another. `bank_authorise_holds` authorises a batch of them in one transaction, so that the
row is locked, and the WAL flushed, once per batch instead of once per payment:

- first it locks every row the batch's holds will lock, in the order one authorisation takes
  them (the day's usage rows by account and day, then the ledger accounts by id; a usage row not
  there yet is made with nothing used), so that it queues behind other writers as one of them
  would and never deadlocks with them;
- then each hold is `bank_authorise_hold` (0009) unchanged, in a subtransaction of its own: a
  refusal or any error undoes that hold alone, and answers what it was (the caller then takes
  the general path for it, which decides and words it).

The batch's items are JSON objects named as `bank_authorise_hold`'s arguments (without `p_`).

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# One answer per item, in order: [payment id, operation id, hold id], or {sqlstate, message}.
_AUTHORISE_HOLDS = """
CREATE FUNCTION bank_authorise_holds(p_items jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    v_item jsonb;
    v_done record;
    v_out jsonb := '[]'::jsonb;
BEGIN
    INSERT INTO deposit_daily_usage AS u (deposit_account_id, day, used_minor)
    SELECT DISTINCT (i ->> 'account')::bigint, (i ->> 'day')::date, 0
    FROM jsonb_array_elements(p_items) AS i
    ORDER BY 1, 2
    ON CONFLICT (deposit_account_id, day) DO UPDATE SET used_minor = u.used_minor;
    PERFORM 1 FROM ledger_accounts
    WHERE id IN (
        SELECT a::bigint FROM jsonb_array_elements(p_items) AS i,
            jsonb_array_elements_text(i -> 'ltx_accounts') AS a)
    ORDER BY id
    FOR UPDATE;
    FOR v_item IN SELECT value FROM jsonb_array_elements(p_items) LOOP
        BEGIN
            SELECT * INTO STRICT v_done FROM bank_authorise_hold(
                (v_item ->> 'account')::bigint, (v_item ->> 'day')::date,
                (v_item ->> 'amount')::bigint, (v_item ->> 'daily_limit')::bigint,
                v_item ->> 'payment', v_item ->> 'payee_kind', v_item ->> 'payee',
                v_item ->> 'currency', v_item ->> 'reference', v_item ->> 'category',
                v_item ->> 'description', (v_item ->> 'now')::timestamptz,
                (v_item ->> 'expires_at')::timestamptz, v_item ->> 'operation', v_item ->> 'key',
                v_item ->> 'fingerprint', v_item ->> 'requested_by', v_item -> 'result',
                v_item ->> 'ltx', v_item ->> 'ltx_key', v_item ->> 'ltx_fingerprint',
                v_item ->> 'ltx_kind', v_item ->> 'ltx_description',
                v_item ->> 'ltx_counterparty', v_item ->> 'ltx_member', v_item -> 'ltx_details',
                ARRAY(SELECT e::bigint FROM jsonb_array_elements_text(v_item -> 'ltx_accounts')
                      WITH ORDINALITY AS t(e, n) ORDER BY n),
                ARRAY(SELECT e::varchar FROM jsonb_array_elements_text(v_item -> 'ltx_currencies')
                      WITH ORDINALITY AS t(e, n) ORDER BY n),
                ARRAY(SELECT e::bigint FROM jsonb_array_elements_text(v_item -> 'ltx_amounts')
                      WITH ORDINALITY AS t(e, n) ORDER BY n),
                v_item ->> 'actor_type', v_item ->> 'actor_label', v_item ->> 'actor_role',
                v_item -> 'after');
            v_out := v_out || jsonb_build_array(
                jsonb_build_array(v_done.payment_id, v_done.operation_id, v_done.hold_id));
        EXCEPTION WHEN OTHERS THEN
            v_out := v_out || jsonb_build_array(
                jsonb_build_object('sqlstate', SQLSTATE, 'message', SQLERRM));
        END;
    END LOOP;
    RETURN v_out;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite runs the Python path
    op.execute(_AUTHORISE_HOLDS)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION IF EXISTS bank_authorise_holds(jsonb)")
