//! The bcrypt checks waiting for a verifier (a blocking thread), queued so that a flood of wrong passwords
//! cannot hold back a user it does not name.
//!
//! A single FIFO behind a semaphore put a valid user's first login behind every guess that came before it:
//! 21–28 s during a 300 req/s flood, and the waiting connections piled up until `max_connections`. Here:
//!
//! - **Turns.** Checks wait in one queue per user name of the file, plus one shared by every name the file
//!   does not list (they can never succeed, and there are as many of them as an attacker cares to invent);
//!   verifiers take the queues in turn, one check each. A user nobody floods waits at most one round: one
//!   check of each queue that has any, shared by the verifiers.
//! - **Caps.** A queue holds at most [`Limits::per_turn`] checks, of which one client address at most
//!   [`Limits::per_address_per_turn`]; an address at most [`Limits::per_address`] in all; every queue
//!   together at most [`Limits::queued`]. Beyond a cap the answer is a 503 at once, and nothing is held.
//! - **Single flight.** Identical checks (the same user and password: the same key) wait for one bcrypt run.
//! - **Deadline.** A check not started within [`Limits::wait`] is given up: a 503 for everyone waiting on
//!   it. A check started is waited for (a bcrypt run is bounded by the cost in the file).
//! - A check whose every client left is taken out of its queue, so that clients that hang up at once do not
//!   keep the verifiers busy.
//!
//! Memory is bounded by the caps: a waiting check is its key, its client, its job (the password and the
//! hash) and a watch channel.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::metrics::metrics;

/// A check's identity: the keyed digest of the user name and password, so identical checks share it.
pub(super) type Key = [u8; 32];

/// The queue a check waits in: a user name of the file, or `None` for every name it does not list.
pub(super) type Turn = Option<Arc<str>>;

/// The work of a check, run on a verifier: whether the password is right.
pub(super) type Job = Box<dyn FnOnce() -> Checked + Send>;

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Checked {
    /// bcrypt verified the password.
    Verified,
    /// bcrypt refused it.
    Wrong,
    /// Verified meanwhile by another check (one that finished after this request looked, before its turn
    /// came): no bcrypt run.
    Remembered,
}

/// How much may wait, and for how long.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// bcrypt checks running at once (blocking threads).
    pub verifiers: usize,
    /// Checks waiting in all queues together.
    pub queued: usize,
    /// Checks waiting from one client address (an IPv6 client: its /64), in all queues together.
    pub per_address: usize,
    /// Checks waiting in one queue (for one user name, or for all the names the file does not list).
    pub per_turn: usize,
    /// Checks waiting from one client address in one queue.
    pub per_address_per_turn: usize,
    /// How long a check may wait for a verifier before the client gets a 503.
    pub wait: Duration,
}

impl Limits {
    /// The limits with `cores` verifiers. A cost-10 check takes about 70 ms on one core here
    /// (`benches/auth.sh`: 28 wrong-password requests/s on 2 cores), so 2 verifiers get through about 140
    /// in the 5 s wait: a longer queue would only turn into 503s later, holding connections meanwhile.
    pub fn for_cores(cores: usize) -> Limits {
        let verifiers = cores.max(1);
        Limits {
            verifiers,
            queued: 64 * verifiers,
            per_address: 16 * verifiers,
            per_turn: 8,
            per_address_per_turn: 2,
            wait: Duration::from_secs(5),
        }
    }
}

/// What a check came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Verified,
    Wrong,
    /// Not checked: a cap, or the deadline.
    Busy(Busy),
}

/// Why a check was not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Busy {
    Queue,
    User,
    Address,
    Deadline,
}

impl Busy {
    /// The reason, for the 503's body and the log.
    pub fn reason(self) -> &'static str {
        match self {
            Busy::Queue => "too many password checks are waiting",
            Busy::User => "too many password checks are waiting for this user name",
            Busy::Address => "too many password checks are waiting from this address",
            Busy::Deadline => "the password check waited too long for its turn",
        }
    }
}

/// The queues and the verifiers working through them.
pub(super) struct Verifiers {
    limits: Limits,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Every check waiting or running, by key.
    flights: HashMap<Key, Flight>,
    /// The keys waiting in each queue, oldest first; a queue with none is removed.
    turns: HashMap<Turn, VecDeque<Key>>,
    /// The queues that have checks waiting, the next to be served first.
    order: VecDeque<Turn>,
    /// Checks waiting per client address.
    addresses: HashMap<IpAddr, usize>,
    queued: usize,
    running: usize,
    next_id: u64,
}

struct Flight {
    /// Tells this flight from a later one with the same key.
    id: u64,
    turn: Turn,
    client: IpAddr,
    deadline: Instant,
    /// The work while the check waits; taken when a verifier starts it.
    job: Option<Job>,
    outcome: watch::Sender<Option<Verdict>>,
}

impl Verifiers {
    pub fn new(limits: Limits) -> Verifiers {
        Verifiers {
            limits,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("never poisoned")
    }

    /// Runs `job` (or joins the identical check `key` already waiting or running) in the queue `turn`, for
    /// the client at `client`.
    pub async fn check(
        self: &Arc<Self>,
        key: Key,
        turn: Turn,
        client: IpAddr,
        job: Job,
    ) -> Verdict {
        let client = address_key(client);
        let (id, deadline, outcome, start_verifier) = {
            let mut state = self.lock();
            if let Some(flight) = state.flights.get(&key) {
                metrics().auth_check("joined");
                (
                    flight.id,
                    flight.deadline,
                    flight.outcome.subscribe(),
                    false,
                )
            } else {
                if let Some(busy) = state.refusal(&self.limits, &turn, client) {
                    return Verdict::Busy(busy);
                }
                let deadline = Instant::now() + self.limits.wait;
                let (sender, receiver) = watch::channel(None);
                let id = state.enqueue(key, turn, client, deadline, job, sender);
                let start_verifier = state.running < self.limits.verifiers;
                state.running += usize::from(start_verifier);
                (id, deadline, receiver, start_verifier)
            }
        };
        if start_verifier {
            let verifiers = self.clone();
            tokio::task::spawn_blocking(move || verifiers.work());
        }
        let mut waiting = Waiting {
            verifiers: self,
            key,
            id,
            outcome: Some(outcome),
        };
        let outcome = waiting.outcome.as_mut().expect("set until dropped");
        if let Ok(verdict) =
            tokio::time::timeout_at(deadline, outcome.wait_for(Option::is_some)).await
        {
            return verdict.map_or(Verdict::Busy(Busy::Deadline), |verdict| {
                verdict.expect("waited for")
            });
        }
        // The deadline: a check still waiting is given up for everyone waiting on it; one that has started
        // is waited for.
        if self.lock().give_up(key, id, Verdict::Busy(Busy::Deadline)) {
            return Verdict::Busy(Busy::Deadline);
        }
        outcome
            .wait_for(Option::is_some)
            .await
            .map_or(Verdict::Busy(Busy::Deadline), |verdict| {
                verdict.expect("waited for")
            })
    }

    /// A verifier: runs the checks in turn until none waits.
    fn work(self: Arc<Self>) {
        loop {
            let Some((key, id, job)) = self.lock().next() else {
                return;
            };
            // A panic must not leave the check's clients waiting, nor the verifier counted as running.
            let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))
                .unwrap_or(Checked::Wrong);
            metrics().auth_check(match checked {
                Checked::Verified => "verified",
                Checked::Wrong => "wrong",
                Checked::Remembered => "remembered",
            });
            let verdict = match checked {
                Checked::Verified | Checked::Remembered => Verdict::Verified,
                Checked::Wrong => Verdict::Wrong,
            };
            let mut state = self.lock();
            if state
                .flights
                .get(&key)
                .is_some_and(|flight| flight.id == id)
            {
                let flight = state.flights.remove(&key).expect("just found");
                flight.outcome.send_replace(Some(verdict));
            }
        }
    }
}

impl State {
    /// Why a new check may not wait, if it may not.
    fn refusal(&self, limits: &Limits, turn: &Turn, client: IpAddr) -> Option<Busy> {
        if self.queued >= limits.queued {
            return Some(Busy::Queue);
        }
        if self.addresses.get(&client).copied().unwrap_or(0) >= limits.per_address {
            return Some(Busy::Address);
        }
        let waiting = self.turns.get(turn)?;
        if waiting.len() >= limits.per_turn {
            return Some(Busy::User);
        }
        let from_client = waiting
            .iter()
            .filter(|key| self.flights[*key].client == client)
            .count();
        (from_client >= limits.per_address_per_turn).then_some(Busy::Address)
    }

    fn enqueue(
        &mut self,
        key: Key,
        turn: Turn,
        client: IpAddr,
        deadline: Instant,
        job: Job,
        outcome: watch::Sender<Option<Verdict>>,
    ) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        let waiting = self.turns.entry(turn.clone()).or_default();
        if waiting.is_empty() {
            self.order.push_back(turn.clone());
        }
        waiting.push_back(key);
        *self.addresses.entry(client).or_default() += 1;
        self.queued += 1;
        metrics().auth_queued.set(self.queued as i64);
        self.flights.insert(
            key,
            Flight {
                id,
                turn,
                client,
                deadline,
                job: Some(job),
                outcome,
            },
        );
        id
    }

    /// The next check to run, taken out of its queue, its queue moved to the back of the order; or none,
    /// and the verifier asking stops (counted here, under the lock, so that a check queued meanwhile
    /// starts a verifier of its own).
    fn next(&mut self) -> Option<(Key, u64, Job)> {
        let Some(turn) = self.order.pop_front() else {
            self.running -= 1;
            return None;
        };
        let waiting = self
            .turns
            .get_mut(&turn)
            .expect("a queue in the order has checks");
        let key = waiting
            .pop_front()
            .expect("a queue in the order has checks");
        if waiting.is_empty() {
            self.turns.remove(&turn);
        } else {
            self.order.push_back(turn);
        }
        let flight = self
            .flights
            .get_mut(&key)
            .expect("a queued key has its flight");
        let job = flight.job.take().expect("a queued flight has its job");
        let (id, client) = (flight.id, flight.client);
        self.unqueued(client);
        Some((key, id, job))
    }

    /// Takes the check `key` (flight `id`) out of its queue if it is still waiting, answering `verdict` to
    /// whoever waits on it; whether it was waiting.
    fn give_up(&mut self, key: Key, id: u64, verdict: Verdict) -> bool {
        let waiting = self
            .flights
            .get(&key)
            .is_some_and(|flight| flight.id == id && flight.job.is_some());
        if !waiting {
            return false;
        }
        let flight = self.flights.remove(&key).expect("just found");
        let keys = self
            .turns
            .get_mut(&flight.turn)
            .expect("a waiting check has its queue");
        keys.retain(|queued| *queued != key);
        if keys.is_empty() {
            self.turns.remove(&flight.turn);
            self.order.retain(|turn| *turn != flight.turn);
        }
        self.unqueued(flight.client);
        flight.outcome.send_replace(Some(verdict));
        true
    }

    fn unqueued(&mut self, client: IpAddr) {
        self.queued -= 1;
        metrics().auth_queued.set(self.queued as i64);
        if let Some(count) = self.addresses.get_mut(&client) {
            *count -= 1;
            if *count == 0 {
                self.addresses.remove(&client);
            }
        }
    }
}

/// A client waiting on a check; when the last one leaves, a check still queued is taken out.
struct Waiting<'a> {
    verifiers: &'a Arc<Verifiers>,
    key: Key,
    id: u64,
    outcome: Option<watch::Receiver<Option<Verdict>>>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let Some(outcome) = self.outcome.take() else {
            return;
        };
        let done = outcome.borrow().is_some();
        drop(outcome);
        if done {
            return;
        }
        let mut state = self.verifiers.lock();
        let abandoned = state
            .flights
            .get(&self.key)
            .is_some_and(|flight| flight.id == self.id && flight.outcome.receiver_count() == 0);
        if abandoned {
            state.give_up(self.key, self.id, Verdict::Busy(Busy::Deadline));
        }
    }
}

/// The address a client is counted under: itself, or for IPv6 its /64, which one client usually has whole.
fn address_key(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn limits() -> Limits {
        Limits {
            verifiers: 1,
            queued: 100,
            per_address: 100,
            per_turn: 100,
            per_address_per_turn: 100,
            wait: Duration::from_secs(30),
        }
    }

    fn key(n: u8) -> Key {
        [n; 32]
    }

    fn turn(user: &str) -> Turn {
        Some(Arc::from(user))
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    /// A job that records its name when it runs, after `gate` lets it (when given).
    fn job(
        name: &'static str,
        ran: &mpsc::Sender<&'static str>,
        gate: Option<mpsc::Receiver<()>>,
    ) -> Job {
        let ran = ran.clone();
        Box::new(move || {
            if let Some(gate) = gate {
                gate.recv().unwrap();
            }
            ran.send(name).unwrap();
            if name.starts_with("right") {
                Checked::Verified
            } else {
                Checked::Wrong
            }
        })
    }

    /// Waits (at most 5 s) until `holds` holds of the state.
    async fn until(verifiers: &Verifiers, what: &str, holds: impl Fn(&State) -> bool) {
        for _ in 0..1000 {
            if holds(&verifiers.lock()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("timed out waiting until {what}");
    }

    async fn queued_reaches(verifiers: &Verifiers, count: usize) {
        until(verifiers, &format!("{count} are queued"), |state| {
            state.queued == count
        })
        .await;
    }

    /// Waits until the check `key` runs.
    async fn started(verifiers: &Verifiers, key: Key) {
        until(verifiers, "the check runs", |state| {
            state
                .flights
                .get(&key)
                .is_some_and(|flight| flight.job.is_none())
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_user_nobody_floods_is_served_after_one_check_of_each_flooded_queue() {
        let verifiers = Arc::new(Verifiers::new(limits()));
        let (ran, order) = mpsc::channel();
        let (open, gate) = mpsc::channel();
        let mut waiting = tokio::task::JoinSet::new();
        // The one verifier is held by the first guess; five more guesses for mallory, three for unknown names.
        let first = job("guess-0", &ran, Some(gate));
        let v = verifiers.clone();
        waiting.spawn(async move { v.check(key(0), turn("mallory"), A, first).await });
        started(&verifiers, key(0)).await;
        for n in 1..=5u8 {
            let v = verifiers.clone();
            let job = job("guess", &ran, None);
            waiting.spawn(async move { v.check(key(n), turn("mallory"), A, job).await });
        }
        queued_reaches(&verifiers, 5).await;
        for n in 6..=8u8 {
            let v = verifiers.clone();
            let job = job("unknown", &ran, None);
            waiting.spawn(async move { v.check(key(n), None, B, job).await });
        }
        queued_reaches(&verifiers, 8).await;
        let v = verifiers.clone();
        let right = job("right-alice", &ran, None);
        let alice = tokio::spawn(async move { v.check(key(9), turn("alice"), B, right).await });
        queued_reaches(&verifiers, 9).await;
        open.send(()).unwrap();
        assert_eq!(alice.await.unwrap(), Verdict::Verified);
        let first_four: Vec<_> = order.iter().take(4).collect();
        assert_eq!(first_four, ["guess-0", "guess", "unknown", "right-alice"]);
        while let Some(verdict) = waiting.join_next().await {
            assert_eq!(verdict.unwrap(), Verdict::Wrong);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn identical_checks_run_once_and_the_caps_refuse_at_once() {
        let verifiers = Arc::new(Verifiers::new(Limits {
            per_turn: 3,
            per_address_per_turn: 2,
            ..limits()
        }));
        let (ran, order) = mpsc::channel();
        let (open, gate) = mpsc::channel();
        let v = verifiers.clone();
        let held = job("guess-0", &ran, Some(gate));
        let running = tokio::spawn(async move { v.check(key(0), turn("mallory"), A, held).await });
        started(&verifiers, key(0)).await;
        let mut joined = Vec::new();
        for _ in 0..3 {
            let v = verifiers.clone();
            let never = job("never", &ran, None);
            joined.push(tokio::spawn(async move {
                v.check(key(0), turn("mallory"), B, never).await
            }));
        }
        until(&verifiers, "three join the running check", |state| {
            state.flights[&key(0)].outcome.receiver_count() == 4
        })
        .await;
        // Two from A fit mallory's queue; a third from A does not, one from B does, then it is full.
        for n in 1..=2u8 {
            let v = verifiers.clone();
            let job = job("queued", &ran, None);
            joined.push(tokio::spawn(async move {
                v.check(key(n), turn("mallory"), A, job).await
            }));
        }
        queued_reaches(&verifiers, 2).await;
        let refused = verifiers
            .check(key(3), turn("mallory"), A, job("x", &ran, None))
            .await;
        assert_eq!(refused, Verdict::Busy(Busy::Address));
        let v = verifiers.clone();
        let from_b = job("queued", &ran, None);
        joined.push(tokio::spawn(async move {
            v.check(key(4), turn("mallory"), B, from_b).await
        }));
        queued_reaches(&verifiers, 3).await;
        let refused = verifiers
            .check(key(5), turn("mallory"), B, job("x", &ran, None))
            .await;
        assert_eq!(refused, Verdict::Busy(Busy::User));
        open.send(()).unwrap();
        assert_eq!(running.await.unwrap(), Verdict::Wrong);
        for waiter in joined {
            assert_eq!(waiter.await.unwrap(), Verdict::Wrong);
        }
        let ran: Vec<_> = order.try_iter().collect();
        assert_eq!(ran, ["guess-0", "queued", "queued", "queued"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_check_not_started_by_its_deadline_is_busy_and_one_whose_clients_left_is_dropped() {
        let verifiers = Arc::new(Verifiers::new(Limits {
            wait: Duration::from_millis(300),
            ..limits()
        }));
        let (ran, order) = mpsc::channel();
        let (open, gate) = mpsc::channel();
        let v = verifiers.clone();
        let held = job("held", &ran, Some(gate));
        let running = tokio::spawn(async move { v.check(key(0), turn("a"), A, held).await });
        started(&verifiers, key(0)).await;
        let v = verifiers.clone();
        let leaving = job("left", &ran, None);
        let left = tokio::spawn(async move { v.check(key(1), turn("b"), A, leaving).await });
        queued_reaches(&verifiers, 1).await;
        left.abort();
        queued_reaches(&verifiers, 0).await;
        let late = verifiers
            .check(key(2), turn("c"), A, job("late", &ran, None))
            .await;
        assert_eq!(late, Verdict::Busy(Busy::Deadline));
        assert_eq!(verifiers.lock().queued, 0);
        // The running check outlives its deadline and is waited for.
        open.send(()).unwrap();
        assert_eq!(running.await.unwrap(), Verdict::Wrong);
        assert_eq!(order.try_iter().collect::<Vec<_>>(), ["held"]);
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64_and_a_mapped_ipv4_as_ipv4() {
        let one: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let other: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(address_key(one), address_key(other));
        assert_ne!(
            address_key(one),
            address_key("2001:db8:1:3::1".parse().unwrap())
        );
        assert_eq!(address_key("::ffff:192.0.2.1".parse().unwrap()), A);
    }
}
