"""The server's functions of the checkout and the ledger keep their plans for the session,
unchanged in what they do (issue 5's throughput goal).

Profiled with `perf` during the checkout benchmark at 250 to 300 checkouts a second, PostgreSQL
spent about half the machine's CPU time, much of it planning the same statements again:

- PostgreSQL 15 plans the body of a `LANGUAGE sql` function that it cannot inline on every call
  (`fmgr_sql`, a tenth of the machine's time), while PL/pgSQL keeps each statement's plan for
  the session: `shop_webhook_emit` (0009; a partner event and its pending deliveries, twice a
  checkout) and `bank_authorise_open` (0009; the bank core's reads for an authorisation) are
  rewritten in PL/pgSQL.
- PL/pgSQL plans a statement with parameters anew for each call (a custom plan) for as long as
  its generic plan is estimated dearer, which with these small, skewed tables is for good. Every
  statement of these functions finds its rows by a unique or foreign key index whatever the
  values, so the generic plan is the plan: `plan_cache_mode = force_generic_plan` is set on
  each of them. At 200 checkouts a second the machine's CPU time per checkout went from 7.3 ms
  to 5.8 ms, PostgreSQL's from 3.2 ms to 2.4 ms (`python -m bench.shop.checkout`).
- Two statements find their rows by key now: `shop_checkout_open` found its products by
  `public_id = ANY (p_products)`, whose generic plan scans the whole table of a small catalog
  (its stock rows are updated at every checkout); and `bank_authorise_holds` (0012) locked a
  batch's ledger accounts by `id IN (SELECT … FROM jsonb_array_elements(…))`, planned with any
  setting as a sequential scan of every ledger account, once per batch.

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WEBHOOK_EMIT_BODY = """
    WITH event AS (
        INSERT INTO shop_webhook_events (partner_id, event_type, payload, created_at, public_id)
        VALUES (p_partner, p_event_type, p_payload, p_now, p_public_id)
        RETURNING id
    )
    INSERT INTO shop_webhook_deliveries (event_id, endpoint_id, status, attempts, next_attempt_at)
    SELECT event.id, e.id, 'pending', 0, p_now
    FROM event, shop_webhook_endpoints AS e
    WHERE e.partner_id = p_partner AND e.active
      AND (e.event_types IN ('[]'::jsonb, 'null'::jsonb)
           OR jsonb_exists(e.event_types, p_event_type))
    ORDER BY e.id"""

_WEBHOOK_EMIT_SIGNATURE = """
CREATE OR REPLACE FUNCTION shop_webhook_emit(
    p_partner bigint, p_event_type varchar, p_public_id varchar, p_payload jsonb,
    p_now timestamptz
) RETURNS void"""

_AUTHORISE_OPEN_QUERY = """
    SELECT jsonb_build_object(
        'known', EXISTS (SELECT 1 FROM payment_operations WHERE idempotency_key = p_key),
        'account', (
            SELECT jsonb_build_object(
                'id', a.id, 'public_id', a.public_id, 'customer_ref', c.public_id,
                'status', a.status, 'currency', a.currency,
                'per_payment_limit_minor', a.per_payment_limit_minor,
                'daily_limit_minor', a.daily_limit_minor,
                'ledger_account_id', a.ledger_account_id)
            FROM deposit_accounts AS a JOIN customers AS c ON c.id = a.customer_id
            WHERE a.public_id = p_account
        ),
        'payee', CASE p_payee_kind
            WHEN 'partner' THEN EXISTS (SELECT 1 FROM partners WHERE public_id = p_payee)
            ELSE EXISTS (SELECT 1 FROM merchants WHERE public_id = p_payee)
        END,
        'payable', (
            SELECT jsonb_build_array(l.id, l.type, l.floor_minor) FROM ledger_accounts AS l
            WHERE l.code = p_payable_code
        )
    )"""

_AUTHORISE_OPEN_SIGNATURE = """
CREATE OR REPLACE FUNCTION bank_authorise_open(
    p_key varchar, p_account varchar, p_payee_kind varchar, p_payee varchar,
    p_payable_code varchar
) RETURNS jsonb"""


# As in 0009 but for the products, which `_checkout_open` fills in.
_CHECKOUT_OPEN = """
CREATE OR REPLACE FUNCTION shop_checkout_open(
    p_partner varchar, p_customer bigint, p_products varchar[], p_at timestamptz,
    p_scope varchar, p_key varchar
) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_partner record;
BEGIN
    SELECT id, public_id, currency INTO v_partner FROM partners WHERE public_id = p_partner;
    IF NOT FOUND THEN
        RETURN jsonb_build_object('partner', NULL);
    END IF;
    RETURN jsonb_build_object(
        'partner', to_jsonb(v_partner),
        'known', p_key IS NOT NULL AND EXISTS (
            SELECT 1 FROM idempotency_records WHERE scope = p_scope AND key = p_key),
        'products', coalesce((
            SELECT jsonb_agg(jsonb_build_array(
                p.public_id, p.id, p.partner_id, p.sku, p.status, price.public_minor,
                price.client_minor))
            FROM @PRODUCTS@
            LEFT JOIN LATERAL (
                -- The latest period covering the instant, as `catalog.prices_now` keeps.
                SELECT pp.public_minor, pp.client_minor FROM shop_product_prices AS pp
                WHERE pp.product_id = p.id AND pp.valid_from <= p_at
                  AND (pp.valid_to IS NULL OR pp.valid_to > p_at)
                ORDER BY pp.valid_from DESC, pp.id DESC LIMIT 1
            ) AS price ON true@WHERE@
        ), '[]'::jsonb),
        'account', (
            SELECT jsonb_build_array(a.id, a.public_id) FROM deposit_accounts AS a
            WHERE a.customer_id = p_customer AND a.currency = v_partner.currency
        )
    );
END
$$
"""

# One index lookup per product asked for, whatever the plan (LIMIT keeps the lookup a subquery
# of its own, which the planner does not turn into a join and may then scan).
_PRODUCTS_BY_KEY = """unnest(p_products) AS wanted(public_id)
            CROSS JOIN LATERAL (
                SELECT sp.public_id, sp.id, sp.partner_id, sp.sku, sp.status
                FROM shop_products AS sp WHERE sp.public_id = wanted.public_id LIMIT 1
            ) AS p"""
# 0009's, which the downgrade puts back.
_PRODUCTS_0009 = "shop_products AS p"
_WHERE_0009 = "\n            WHERE p.public_id = ANY (p_products)"


def _checkout_open(products: str, where: str) -> str:
    return _CHECKOUT_OPEN.replace("@PRODUCTS@", products).replace("@WHERE@", where)


# As in 0012 but for the ledger accounts the batch locks first, which `_authorise_holds` fills
# in.
_AUTHORISE_HOLDS = """
CREATE OR REPLACE FUNCTION bank_authorise_holds(p_items jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
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
    WHERE @ACCOUNTS@
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

# The accounts by their primary key: 0012's `id IN (SELECT … FROM jsonb_array_elements(…))`,
# its function scans estimated at 10,000 rows, was planned (custom or generic alike) as a hash
# join over a sequential scan of every ledger account, once per batch of authorisations.
_ACCOUNTS_BY_KEY = """id = ANY (ARRAY(
        SELECT a::bigint FROM jsonb_array_elements(p_items) AS i,
            jsonb_array_elements_text(i -> 'ltx_accounts') AS a))"""
_ACCOUNTS_0012 = """id IN (
        SELECT a::bigint FROM jsonb_array_elements(p_items) AS i,
            jsonb_array_elements_text(i -> 'ltx_accounts') AS a)"""


def _authorise_holds(accounts: str) -> str:
    return _AUTHORISE_HOLDS.replace("@ACCOUNTS@", accounts)


# Each called by name alone: none is overloaded.
GENERIC_PLANS = (
    "ledger_post",
    "shop_webhook_emit",
    "shop_checkout_open",
    "shop_checkout_place",
    "shop_checkout_paid",
    "bank_authorise_open",
    "bank_authorise_hold",
    "bank_authorise_holds",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite runs the Python path
    op.execute(
        f"{_WEBHOOK_EMIT_SIGNATURE} LANGUAGE plpgsql AS $$\nBEGIN{_WEBHOOK_EMIT_BODY};\nEND\n$$"
    )
    op.execute(
        f"{_AUTHORISE_OPEN_SIGNATURE} LANGUAGE plpgsql STABLE AS $$\n"
        f"BEGIN\n    RETURN ({_AUTHORISE_OPEN_QUERY});\nEND\n$$"
    )
    op.execute(_checkout_open(_PRODUCTS_BY_KEY, ""))
    op.execute(_authorise_holds(_ACCOUNTS_BY_KEY))
    for name in GENERIC_PLANS:
        op.execute(f"ALTER FUNCTION {name} SET plan_cache_mode = force_generic_plan")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in GENERIC_PLANS:
        op.execute(f"ALTER FUNCTION {name} RESET plan_cache_mode")
    op.execute(_checkout_open(_PRODUCTS_0009, _WHERE_0009))
    op.execute(_authorise_holds(_ACCOUNTS_0012))
    op.execute(f"{_WEBHOOK_EMIT_SIGNATURE} LANGUAGE sql AS $${_WEBHOOK_EMIT_BODY}\n$$")
    op.execute(f"{_AUTHORISE_OPEN_SIGNATURE} LANGUAGE sql STABLE AS $${_AUTHORISE_OPEN_QUERY}\n$$")
