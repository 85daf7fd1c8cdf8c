// Package registry keeps the job registry in the stack's shared DynamoDB
// table: at most one running AllConversations job per (AppId, FromUserId),
// each of its rounds owned by exactly one invocation, and every job's status
// for 30 days.
//
// # Items
//
// Two items per job, keyed by the table's one partition key PK:
//
//   - "user#<AppId>#<FromUserId>", the owner: the user's latest job (JobId),
//     the round it owns (Round), since when (ActiveAt, Unix ms), until when
//     that round's invocation can run at most (LeaseUntil, its deadline), the
//     last round that ended (Ended), and State (running, complete, stopped).
//   - "job#<JobId>", the status body the routes answer (Status), written when
//     the job starts and once at the end of each round (never per deletion).
//
// Both carry ExpiresAt (Unix seconds), 30 days after their last write, the
// table's TTL attribute.
//
// # Ownership
//
// Every write is one conditional PutItem or UpdateItem (no read then write):
//
//   - A new job (round 1) claims the owner item unless the user's job is live:
//     running, and active within the takeover age (TakeoverAge) or inside its
//     round's lease. A live job is joined instead (the caller answers with
//     its id and counts). A running job whose last activity is older than the
//     takeover age lost its chain: the new job takes it over.
//   - Round r of job J runs only if the owner item says J, running, and round
//     r−1 that ended (or whose lease is over: its end was not recorded); or
//     round r itself whose lease is over and which did not end (its
//     invocation failed, and the queue delivered the record again). So a
//     duplicated continuation, one a producer sent twice, or one of a job
//     taken over meanwhile stops by itself, and no round runs twice at once.
//     Round r that finds round r−1 neither ended nor past its lease waits:
//     its record is reported failed and comes back later.
//   - A round records its end (Ended, and State when the job is over) before
//     it sends its continuation, so the next round finds it ended; if the
//     send fails, Reopen undoes it, so the queue's retry of the round runs.
//     A send that timed out after SQS took the message then leaves two
//     copies of the next round; the first that comes runs, the other stops.
//
// TakeoverAge is 3 × 370 s, three of the template's visibility timeouts: a
// round lasts at most the function's timeout (≤ 900 s), and its continuation
// is on the queue when it ends, so a job idle for that long has lost its chain
// (or its record is backing off after failures: then the new job does the
// same work, and the old record stops when it comes back).
package registry
