"""The shop's checkout and the bank core's authorisation in a few round trips on PostgreSQL
(issue 5's throughput goal), as `ledger_post` (0005) did for the ledger.

Each function does on the server what the Python code does on SQLite, with the same checks in the
same order and the same locks in the same order; the Python side keeps every rule that needs no
row (pricing, the bank's offers, the payloads, the fingerprints) and sends what it worked out.
A function never words an unusual case: it raises a SQLSTATE of its own (so that it wrote
nothing, even when it is a transaction of its own) or answers that nothing was done, and the
caller's general Python path then does the work, so there is one reference implementation of
every refusal. The one exception is a sold-out product, common in a flash sale, which the
caller words itself from the product the function names.

- `shop_webhook_emit`: a partner event and one pending delivery per active endpoint that wants
  it, in one statement (the outbox of `commerce/webhooks/outbox.py`).
- `shop_checkout_open`: the checkout's reads: the partner, whether the `Idempotency-Key` is
  known, the products with their price now and the customer's deposit account in the partner's
  currency, as one JSON document.
- `shop_checkout_place`: transaction 1's writes: the key's claim (`INSERT … ON CONFLICT DO
  NOTHING`, holding its answer) first, stock reserved product by product in id order by the
  conditional UPDATE, the order, its lines, its first event and `order.created`.
- `shop_checkout_paid`: transaction 2: `pending_payment → paid` by the conditional UPDATE, the
  order's event and `order.paid`.
- `bank_authorise_open`: the bank core's reads for an authorisation: whether the key is known,
  the paying account with its customer, whether the payee exists, the payee's payable account.
- `bank_authorise_hold`: the authorisation's writes: the day's usage within the daily limit,
  the ledger hold (`ledger_post`), the payment, its operation (whose unique key is the claim)
  and the audit record.

The shop's functions touch only the shop's tables and the bank's only the bank's and the
ledger's: the bank core stays an adapter behind `PaymentGateway` that a bank can replace.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WEBHOOK_EMIT = """
CREATE FUNCTION shop_webhook_emit(
    p_partner bigint, p_event_type varchar, p_public_id varchar, p_payload jsonb,
    p_now timestamptz
) RETURNS void LANGUAGE sql AS $$
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
    ORDER BY e.id
$$
"""

# 'partner' null: no such partner. Otherwise 'known' (whether the key has a record already: the
# caller asks `idempotency.claim_within` what it answered), 'products' (public id, id, partner,
# sku, status, public price, client price; the prices null when none covers `p_at`) and
# 'account' (id, public id; null when the customer has none in the partner's currency).
_CHECKOUT_OPEN = """
CREATE FUNCTION shop_checkout_open(
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
            FROM shop_products AS p
            LEFT JOIN LATERAL (
                -- The latest period covering the instant, as `catalog.prices_now` keeps.
                SELECT pp.public_minor, pp.client_minor FROM shop_product_prices AS pp
                WHERE pp.product_id = p.id AND pp.valid_from <= p_at
                  AND (pp.valid_to IS NULL OR pp.valid_to > p_at)
                ORDER BY pp.valid_from DESC, pp.id DESC LIMIT 1
            ) AS price ON true
            WHERE p.public_id = ANY (p_products)
        ), '[]'::jsonb),
        'account', (
            SELECT jsonb_build_array(a.id, a.public_id) FROM deposit_accounts AS a
            WHERE a.customer_id = p_customer AND a.currency = v_partner.currency
        )
    );
END
$$
"""

# The new order's id and the claim's. A refusal raises, so that the call writes nothing even
# as a transaction of its own: SQLSTATE BS001 when a product's stock does not cover its quantity
# (DETAIL: the product's id), BS002 when the key was claimed before (by a committed request: the
# insert waited for a concurrent one).
_CHECKOUT_PLACE = """
CREATE FUNCTION shop_checkout_place(
    p_scope varchar, p_key varchar, p_fingerprint varchar, p_locked_until timestamptz,
    p_response jsonb, p_public_id varchar, p_customer bigint, p_partner bigint, p_currency varchar,
    p_goods bigint, p_saving bigint, p_protection bigint, p_total bigint,
    p_instalment_months bigint, p_instalment_plan jsonb, p_policy_ref varchar,
    p_address jsonb, p_now timestamptz, p_reserved_until timestamptz, p_actor varchar,
    p_reserve bigint[], p_reserve_quantities bigint[],
    p_products bigint[], p_quantities bigint[], p_units bigint[], p_public_units bigint[],
    p_event_id varchar, p_payload jsonb,
    OUT order_id bigint, OUT claim_id bigint
) LANGUAGE plpgsql AS $$
DECLARE
    v_i integer;
BEGIN
    -- The claim first, before any lock: a same-key request waits here for the first to end.
    IF p_key IS NOT NULL THEN
        INSERT INTO idempotency_records (
            scope, key, fingerprint, state, locked_until, status_code, response, created_at,
            completed_at
        ) VALUES (
            p_scope, p_key, p_fingerprint, 'completed', p_locked_until, 201, p_response, p_now,
            p_now
        )
        ON CONFLICT (scope, key) DO NOTHING
        RETURNING id INTO claim_id;
        IF claim_id IS NULL THEN
            RAISE EXCEPTION 'the Idempotency-Key was claimed before' USING ERRCODE = 'BS002';
        END IF;
    END IF;
    -- In product id order (the caller sends them sorted), like every writer of stock.
    FOR v_i IN 1 .. cardinality(p_reserve) LOOP
        UPDATE shop_products SET stock_reserved = stock_reserved + p_reserve_quantities[v_i]
        WHERE id = p_reserve[v_i] AND status = 'active'
          AND stock_on_hand - stock_reserved >= p_reserve_quantities[v_i];
        IF NOT FOUND THEN
            RAISE EXCEPTION 'not enough stock' USING ERRCODE = 'BS001', DETAIL = p_reserve[v_i];
        END IF;
    END LOOP;
    INSERT INTO shop_orders (
        public_id, customer_id, partner_id, campaign_id, status, currency, goods_minor,
        saving_minor, protection_minor, total_minor, captured_minor, refunded_minor,
        instalment_months, instalment_plan, protection_policy_ref, shipping_address,
        address_consent_at, placed_at, reserved_until, updated_at
    ) VALUES (
        p_public_id, p_customer, p_partner, NULL, 'pending_payment', p_currency, p_goods,
        p_saving, p_protection, p_total, 0, 0, p_instalment_months, p_instalment_plan,
        p_policy_ref, p_address, p_now, p_now, p_reserved_until, p_now
    )
    RETURNING id INTO order_id;
    INSERT INTO shop_order_lines (
        order_id, product_id, quantity, unit_minor, public_unit_minor, shipped_quantity,
        returned_quantity
    )
    SELECT order_id, u.product_id, u.quantity, u.unit_minor, u.public_unit_minor, 0, 0
    FROM unnest(p_products, p_quantities, p_units, p_public_units) WITH ORDINALITY
        AS u(product_id, quantity, unit_minor, public_unit_minor, n)
    ORDER BY u.n;
    INSERT INTO shop_order_events (order_id, from_status, to_status, at, actor, note)
    VALUES (order_id, NULL, 'pending_payment', p_now, p_actor, NULL);
    PERFORM shop_webhook_emit(p_partner, 'order.created', p_event_id, p_payload, p_now);
END
$$
"""

# False: the order is no longer `pending_payment` (nothing written; the caller's general path
# says why).
_CHECKOUT_PAID = """
CREATE FUNCTION shop_checkout_paid(
    p_order bigint, p_partner bigint, p_payment_ref varchar, p_captured bigint,
    p_now timestamptz, p_actor varchar, p_event_id varchar, p_payload jsonb
) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    UPDATE shop_orders SET
        status = 'paid', updated_at = p_now, payment_ref = p_payment_ref,
        captured_minor = p_captured, reserved_until = NULL
    WHERE id = p_order AND status = 'pending_payment';
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO shop_order_events (order_id, from_status, to_status, at, actor, note)
    VALUES (p_order, 'pending_payment', 'paid', p_now, p_actor, NULL);
    PERFORM shop_webhook_emit(p_partner, 'order.paid', p_event_id, p_payload, p_now);
    RETURN true;
END
$$
"""

# 'known': an operation has the key (the caller replays it). 'account': the paying account and
# its customer's public id, null if there is none. 'payee': whether the merchant or partner
# exists. 'payable': the payee's payable ledger account (id, type, floor), null if not opened yet.
_AUTHORISE_OPEN = """
CREATE FUNCTION bank_authorise_open(
    p_key varchar, p_account varchar, p_payee_kind varchar, p_payee varchar,
    p_payable_code varchar
) RETURNS jsonb LANGUAGE sql STABLE AS $$
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
    )
$$
"""

# The new payment's, operation's and hold's ids. Anything else raises SQLSTATE BK001 (the
# message says what: the day's usage would go over the daily limit, a concurrent call with the
# key committed first, the ledger refused the hold), so that the call writes nothing even as a
# transaction of its own; the caller's general path then decides and words it.
_AUTHORISE_HOLD = """
CREATE FUNCTION bank_authorise_hold(
    p_account bigint, p_day date, p_amount bigint, p_daily_limit bigint,
    p_payment_public_id varchar, p_payee_kind varchar, p_payee varchar, p_currency varchar,
    p_reference varchar, p_category varchar, p_description text, p_now timestamptz,
    p_expires_at timestamptz,
    p_operation_public_id varchar, p_key varchar, p_fingerprint varchar,
    p_requested_by varchar, p_result jsonb,
    p_ltx_public_id varchar, p_ltx_key varchar, p_ltx_fingerprint varchar, p_ltx_kind varchar,
    p_ltx_description text, p_ltx_counterparty varchar, p_ltx_member varchar,
    p_ltx_details jsonb, p_ltx_accounts bigint[], p_ltx_currencies varchar[],
    p_ltx_amounts bigint[],
    p_actor_type varchar, p_actor_label varchar, p_actor_role varchar, p_audit_after jsonb,
    OUT payment_id bigint, OUT operation_id bigint, OUT hold_id bigint
) LANGUAGE plpgsql AS $$
DECLARE
    v_posted record;
BEGIN
    -- The day's usage first: a concurrent payment of the account queues on its row.
    INSERT INTO deposit_daily_usage AS u (deposit_account_id, day, used_minor)
    VALUES (p_account, p_day, p_amount)
    ON CONFLICT (deposit_account_id, day) DO UPDATE SET used_minor = u.used_minor + p_amount
    WHERE p_daily_limit IS NULL OR u.used_minor + p_amount <= p_daily_limit;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'over the daily limit' USING ERRCODE = 'BK001';
    END IF;
    SELECT * INTO v_posted FROM ledger_post(
        p_ltx_public_id, p_ltx_key, p_ltx_fingerprint, p_ltx_kind, 'pending', p_ltx_description,
        p_ltx_counterparty, p_ltx_member, p_category, p_payment_public_id, NULL, NULL, p_now,
        p_now, p_requested_by, p_ltx_details, p_ltx_accounts, p_ltx_currencies, p_ltx_amounts);
    IF v_posted.outcome <> 'created' THEN
        RAISE EXCEPTION USING ERRCODE = 'BK001', MESSAGE = 'the ledger: ' || v_posted.outcome;
    END IF;
    hold_id := v_posted.transaction_id;
    INSERT INTO payments (
        public_id, deposit_account_id, payee_kind, payee_ref, currency, amount_minor,
        captured_minor, refunded_minor, status, reference, category, description,
        hold_transaction_id, usage_day, created_at, updated_at, expires_at
    ) VALUES (
        p_payment_public_id, p_account, p_payee_kind, p_payee, p_currency, p_amount, 0, 0,
        'authorised', p_reference, p_category, p_description, hold_id, p_day, p_now, p_now,
        p_expires_at
    )
    RETURNING id INTO payment_id;
    INSERT INTO payment_operations (
        public_id, payment_id, kind, idempotency_key, fingerprint, amount_minor, currency,
        outcome, ledger_transaction_id, requested_by, created_at, result
    ) VALUES (
        p_operation_public_id, payment_id, 'authorise', p_key, p_fingerprint, p_amount,
        p_currency, 'approved', hold_id, p_requested_by, p_now, p_result
    )
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id INTO operation_id;
    IF operation_id IS NULL THEN
        RAISE EXCEPTION 'the key was used by a concurrent call' USING ERRCODE = 'BK001';
    END IF;
    INSERT INTO audit_events (
        occurred_at, actor_type, actor_id, actor_label, actor_role, action, object_type,
        object_id, before, after
    ) VALUES (
        p_now, p_actor_type, p_requested_by, p_actor_label, p_actor_role, 'payment.authorised',
        'payment', p_payment_public_id, NULL, p_audit_after
    );
END
$$
"""

_FUNCTIONS = {
    "shop_webhook_emit": ("bigint, character varying, character varying, jsonb, timestamptz"),
    "shop_checkout_open": (
        "character varying, bigint, character varying[], timestamptz, character varying, "
        "character varying"
    ),
    "shop_checkout_place": (
        "character varying, character varying, character varying, timestamptz, jsonb, "
        "character varying, bigint, bigint, character varying, bigint, bigint, bigint, bigint, "
        "bigint, jsonb, character varying, jsonb, timestamptz, timestamptz, character varying, "
        "bigint[], bigint[], bigint[], bigint[], bigint[], bigint[], character varying, jsonb"
    ),
    "shop_checkout_paid": (
        "bigint, bigint, character varying, bigint, timestamptz, character varying, "
        "character varying, jsonb"
    ),
    "bank_authorise_open": (
        "character varying, character varying, character varying, character varying, "
        "character varying"
    ),
    "bank_authorise_hold": (
        "bigint, date, bigint, bigint, character varying, character varying, character varying, "
        "character varying, character varying, character varying, text, timestamptz, "
        "timestamptz, character varying, character varying, character varying, "
        "character varying, jsonb, character varying, character varying, character varying, "
        "character varying, text, character varying, character varying, jsonb, bigint[], "
        "character varying[], bigint[], character varying, character varying, "
        "character varying, jsonb"
    ),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite runs the Python path
    for body in (
        _WEBHOOK_EMIT,
        _CHECKOUT_OPEN,
        _CHECKOUT_PLACE,
        _CHECKOUT_PAID,
        _AUTHORISE_OPEN,
        _AUTHORISE_HOLD,
    ):
        op.execute(body)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, arguments in reversed(_FUNCTIONS.items()):
        op.execute(f"DROP FUNCTION IF EXISTS {name}({arguments})")
