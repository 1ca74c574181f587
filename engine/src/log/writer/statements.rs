//! The statements that write a batch's rows: one multi-row statement per table (chunked under the
//! databases' parameter limits), written once for both databases.

use alloy::primitives::Address;
use sqlx::{Database, Encode, QueryBuilder, Type};

use super::decide::{ReservationRow, Rows, SagaRow, StepRow};
use crate::log::db_int;

/// Rows per multi-row statement: at most 11 parameters each stays under SQLite's 32,766 and
/// PostgreSQL's 65,535 bound parameters.
pub(crate) const ROWS_PER_STATEMENT: usize = 1_000;

/// A batch's writes: on SQLite, every statement in one query (one round trip to the thread of its
/// connection); on PostgreSQL, one query per statement (its protocol binds one at a time).
struct Writes<DB: Database> {
    together: bool,
    queries: Vec<QueryBuilder<DB>>,
}

impl<DB: Database> Writes<DB>
where
    DB::Arguments: Default,
{
    /// Starts the next statement with `sql`.
    fn statement(&mut self, sql: &str) -> &mut QueryBuilder<DB> {
        match self.queries.last_mut() {
            Some(query) if self.together => {
                query.push("; ").push(sql);
            }
            _ => self.queries.push(QueryBuilder::new(sql)),
        }
        let last = self.queries.len() - 1;
        &mut self.queries[last]
    }
}

/// The queries that write `rows`, all statements in one query when `together`. Reservations are
/// written before releases, so a saga admitted and completed in one batch keeps none.
pub(crate) fn statements<DB>(rows: &Rows, together: bool) -> Vec<QueryBuilder<DB>>
where
    DB: Database,
    DB::Arguments: Default,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> Option<String>: Encode<'t, DB> + Type<DB>,
    for<'t> Option<i64>: Encode<'t, DB> + Type<DB>,
    for<'t> Option<&'static str>: Encode<'t, DB> + Type<DB>,
    for<'t> &'static str: Encode<'t, DB> + Type<DB>,
{
    let mut writes = Writes {
        together,
        queries: Vec::new(),
    };
    let reserved: Vec<&ReservationRow> = rows.reservations.values().collect();
    for chunk in reserved.chunks(ROWS_PER_STATEMENT) {
        let upsert = writes
            .statement("INSERT INTO reservations (saga_id, chain, token, amount, expires_ms) ");
        upsert.push_values(chunk, |mut b, r| {
            b.push_bind(r.saga.clone())
                .push_bind(r.chain)
                .push_bind(r.token.clone())
                .push_bind(r.amount.clone())
                .push_bind(r.expires_ms);
        });
        upsert.push(
            " ON CONFLICT (saga_id, chain, token) DO UPDATE SET amount = excluded.amount, \
             expires_ms = excluded.expires_ms",
        );
    }
    for chunk in rows.intents.chunks(ROWS_PER_STATEMENT) {
        let insert =
            writes.statement("INSERT INTO intents (saga_num, id, body, route, created_ms) ");
        insert.push_values(chunk, |mut b, i| {
            b.push_bind(i.num)
                .push_bind(i.id.clone())
                .push_bind(i.body.clone())
                .push_bind(i.route.clone())
                .push_bind(i.created_ms);
        });
        insert.push(" ON CONFLICT (saga_num) DO NOTHING");
    }
    let submitted: Vec<(&str, &str, i64)> = rows
        .intents
        .iter()
        .filter_map(|i| Some((i.id.as_str(), i.submitter.as_deref()?, i.created_ms)))
        .collect();
    for chunk in submitted.chunks(ROWS_PER_STATEMENT) {
        let insert =
            writes.statement("INSERT INTO intent_submitters (intent_id, key_name, created_ms) ");
        insert.push_values(chunk, |mut b, (id, name, at)| {
            b.push_bind(id.to_string())
                .push_bind(name.to_string())
                .push_bind(*at);
        });
        insert.push(" ON CONFLICT (intent_id) DO NOTHING");
    }
    for chunk in rows.released.chunks(ROWS_PER_STATEMENT) {
        let delete = writes.statement("DELETE FROM reservations WHERE saga_id IN (");
        let mut ids = delete.separated(", ");
        for id in chunk {
            ids.push_bind(id.clone());
        }
        ids.push_unseparated(")");
    }
    for chunk in rows.events.chunks(ROWS_PER_STATEMENT) {
        let insert = writes.statement(
            "INSERT INTO saga_events (saga_num, seq, kind, payload, prev_hash, hash, at_ms) ",
        );
        insert.push_values(chunk, |mut b, r| {
            b.push_bind(r.saga_num)
                .push_bind(r.seq)
                .push_bind(r.kind)
                .push_bind(r.payload.clone())
                .push_bind(r.prev_hash.clone())
                .push_bind(r.hash.clone())
                .push_bind(r.at_ms);
        });
    }
    let steps: Vec<&StepRow> = rows.steps.values().collect();
    for chunk in steps.chunks(ROWS_PER_STATEMENT) {
        let upsert =
            writes.statement("INSERT INTO steps (saga_num, step, state, tx_hash, updated_ms) ");
        upsert.push_values(chunk, |mut b, r| {
            b.push_bind(r.saga_num)
                .push_bind(i64::from(r.step))
                .push_bind(r.state)
                .push_bind(r.tx_hash.clone())
                .push_bind(r.at_ms);
        });
        upsert.push(
            " ON CONFLICT (saga_num, step) DO UPDATE SET state = excluded.state, \
             tx_hash = COALESCE(excluded.tx_hash, steps.tx_hash), updated_ms = excluded.updated_ms",
        );
    }
    let nonces: Vec<(u64, Address, i64)> =
        rows.nonces.iter().map(|((c, a), n)| (*c, *a, *n)).collect();
    for chunk in nonces.chunks(ROWS_PER_STATEMENT) {
        let upsert = writes.statement("INSERT INTO nonces (chain, signer, next_nonce) ");
        upsert.push_values(chunk, |mut b, (chain, signer, next)| {
            b.push_bind(db_int(*chain))
                .push_bind(signer.to_string())
                .push_bind(*next);
        });
        upsert.push(
            " ON CONFLICT (chain, signer) DO UPDATE SET next_nonce = \
             CASE WHEN excluded.next_nonce > nonces.next_nonce THEN excluded.next_nonce \
             ELSE nonces.next_nonce END",
        );
    }
    for chunk in rows.signed.chunks(ROWS_PER_STATEMENT) {
        let delete = writes.statement("DELETE FROM nonce_claims WHERE ");
        let mut each = delete.separated(" OR ");
        for (chain, signer, nonce) in chunk {
            each.push("(chain = ")
                .push_bind_unseparated(db_int(*chain))
                .push_unseparated(" AND signer = ")
                .push_bind_unseparated(signer.to_string())
                .push_unseparated(" AND nonce = ")
                .push_bind_unseparated(db_int(*nonce))
                .push_unseparated(")");
        }
    }
    let sagas: Vec<&SagaRow> = rows.sagas.values().collect();
    for chunk in sagas.chunks(ROWS_PER_STATEMENT) {
        let upsert = writes.statement(
            "INSERT INTO sagas (id, num, state, outcome, outcome_kind, decided_ms, last_seq, \
             last_hash, created_ms, updated_ms, lease_owner, lease_until, fence) ",
        );
        upsert.push_values(chunk, |mut b, r| {
            b.push_bind(r.id.clone())
                .push_bind(r.num)
                .push_bind(r.state.unwrap_or("running"))
                .push_bind(r.outcome.clone())
                .push_bind(r.decided.map(|d| d.0))
                .push_bind(r.decided.map(|d| d.1))
                .push_bind(r.last_seq)
                .push_bind(r.last_hash.clone())
                .push_bind(r.at_ms)
                .push_bind(r.at_ms)
                .push_bind(r.lease.as_ref().map(|l| l.0.clone()))
                .push_bind(r.lease.as_ref().map(|l| l.1))
                .push_bind(i64::from(r.lease.is_some()));
        });
        // The lease columns are only set when the row is created (an admission); an existing
        // saga's lease changes through acquire and renew only. `running` is only a new saga's
        // state: an existing saga keeps the state it reached.
        upsert.push(
            " ON CONFLICT (id) DO UPDATE SET \
             state = CASE WHEN excluded.state = 'running' THEN sagas.state ELSE excluded.state END, \
             outcome = COALESCE(excluded.outcome, sagas.outcome), \
             outcome_kind = COALESCE(excluded.outcome_kind, sagas.outcome_kind), \
             decided_ms = COALESCE(excluded.decided_ms, sagas.decided_ms), \
             last_seq = excluded.last_seq, \
             last_hash = excluded.last_hash, updated_ms = excluded.updated_ms",
        );
    }
    // The webhook outbox: a message for every endpoint that the key which submitted the saga
    // subscribed to the event's topic, in the commit that writes the event (after the saga and
    // submitter rows it joins, which the batch that admits a saga writes above).
    for chunk in rows.events.chunks(ROWS_PER_STATEMENT) {
        let insert = writes.statement(
            "INSERT INTO webhook_outbox (endpoint_id, saga_num, seq, topic, attempts, due_ms, \
             first_ms, claim_until) SELECT w.endpoint_id, v.column1, v.column2, v.column3, 0, \
             v.column4, v.column4, 0 FROM (",
        );
        insert.push_values(chunk, |mut b, r| {
            b.push_bind(r.saga_num)
                .push_bind(r.seq)
                .push_bind(r.topic)
                .push_bind(r.at_ms);
        });
        insert.push(
            ") AS v JOIN sagas s ON s.num = v.column1 \
             JOIN intent_submitters i ON i.intent_id = s.id \
             JOIN webhook_subscriptions w ON w.key_name = i.key_name AND w.topic = v.column3 \
             WHERE true ON CONFLICT DO NOTHING",
        );
    }
    writes.queries
}
