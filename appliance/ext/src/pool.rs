//! Instance slots: the pooling allocator's fixed set of pre-reserved instance
//! slots, and a counting gate so a call waits for a free slot instead of
//! failing when more calls run at once than the pool holds.
//!
//! Why pooling: a naming call is a fresh instance per call. With on-demand
//! allocation each call maps, faults in and unmaps its linear memory; a pool
//! slot keeps its mapping and copy-on-write image between calls, so an
//! instance starts without mmap or the process-wide mmap lock.
//!
//! Hand-written gate: a Mutex/Condvar counter with a timeout is all it takes;
//! calls run on blocking threads, so an async semaphore would not fit. The
//! same counter tells the epoch ticker when a call is in flight, so an idle
//! host does not wake every tick.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use wasmtime::{InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::limits::Limits;

/// Component instances that can be live at once (calls in flight, self-tests
/// included). Each costs virtual address space only until it is used.
pub const SLOTS: u32 = 32;

/// Bytes of each linear memory kept resident (reset with memset instead of
/// madvise) when a slot is freed. Measured with the naming example (1.1 MiB
/// touched per call, bench/README.md): keeping 2 MiB resident gave p99
/// 96–101 µs, madvise 74–77 µs; memset of the whole heap costs more than the
/// faults it saves.
pub const KEEP_RESIDENT: usize = 0;

/// Core instances and memories one component may have: a wasm32-wasip2
/// component is its own module plus a few small shim modules.
const CORE_INSTANCES_PER_COMPONENT: u32 = 16;
const MEMORIES_PER_COMPONENT: u32 = 2;

/// The pooling allocator for [`SLOTS`] components whose memories may grow to
/// the operator's memory cap (the per-call limiter stops them at their own
/// limit first, so that limit's error stays the one reported).
pub fn strategy(cap: Limits) -> InstanceAllocationStrategy {
    let mut p = PoolingAllocationConfig::new();
    p.total_component_instances(SLOTS)
        .total_core_instances(SLOTS * CORE_INSTANCES_PER_COMPONENT)
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .total_memories(SLOTS * MEMORIES_PER_COMPONENT)
        .max_memories_per_component(MEMORIES_PER_COMPONENT)
        .total_tables(SLOTS * CORE_INSTANCES_PER_COMPONENT)
        .max_memory_size(memory_reservation(cap))
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(64 << 10);
    InstanceAllocationStrategy::Pooling(p)
}

/// The virtual reservation of each memory: the cap, at least 64 MiB.
pub fn memory_reservation(cap: Limits) -> usize {
    usize::try_from(cap.memory_bytes)
        .unwrap_or(usize::MAX)
        .clamp(64 << 20, 4 << 30)
}

/// Counts free slots; [`Gate::enter`] waits for one.
#[derive(Debug)]
pub struct Gate {
    slots: u32,
    free: Mutex<u32>,
    freed: Condvar,
    /// Notified when a slot is taken (and by [`Gate::wake_all`]).
    taken: Condvar,
}

/// A slot held for one call; dropping it frees the slot.
#[derive(Debug)]
pub struct Pass<'a>(&'a Gate);

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.0.freed.notify_one();
    }
}

impl Gate {
    pub fn new(slots: u32) -> Gate {
        Gate {
            slots,
            free: Mutex::new(slots),
            freed: Condvar::new(),
            taken: Condvar::new(),
        }
    }

    /// Blocks while no slot is held and `stop` is false: the epoch ticker
    /// waits here instead of ticking for nobody.
    pub fn wait_busy(&self, stop: &AtomicBool) {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == self.slots && !stop.load(Ordering::Relaxed) {
            free = self.taken.wait(free).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Wakes every [`Gate::wait_busy`] (to see a stop flag).
    pub fn wake_all(&self) {
        let _free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        self.taken.notify_all();
    }

    /// A slot, waiting up to `wait` for one; `None` if none came free.
    pub fn enter(&self, wait: Duration) -> Option<Pass<'_>> {
        let until = Instant::now() + wait;
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            let left = until.checked_duration_since(Instant::now())?;
            free = self
                .freed
                .wait_timeout(free, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *free -= 1;
        if *free + 1 == self.slots {
            self.taken.notify_all();
        }
        Some(Pass(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_call_waits_for_a_slot_and_gets_it_when_one_is_freed() {
        let gate = Arc::new(Gate::new(1));
        let held = gate.enter(Duration::ZERO).expect("one slot");
        assert!(gate.enter(Duration::from_millis(20)).is_none());
        let g = gate.clone();
        let waiter = std::thread::spawn(move || g.enter(Duration::from_secs(10)).is_some());
        std::thread::sleep(Duration::from_millis(20));
        drop(held);
        assert!(waiter.join().expect("waiter"));
        assert!(gate.enter(Duration::ZERO).is_some());
    }

    #[test]
    fn the_ticker_waits_while_no_call_is_in_flight() {
        let gate = Arc::new(Gate::new(2));
        let stop = Arc::new(AtomicBool::new(false));
        let (g, s) = (gate.clone(), stop.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        let ticker = std::thread::spawn(move || {
            // Two rounds: each returns once a call holds a slot.
            for _ in 0..2 {
                g.wait_busy(&s);
                tx.send(()).unwrap();
                // "Ticking" until the call ends.
                while !s.load(Ordering::Relaxed) && *g.free.lock().unwrap() != g.slots {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            g.wait_busy(&s);
        });
        let idle = Duration::from_millis(50);
        assert!(rx.recv_timeout(idle).is_err(), "ticked with no call");
        let pass = gate.enter(Duration::ZERO).unwrap();
        rx.recv_timeout(Duration::from_secs(10))
            .expect("woken by a call");
        drop(pass);
        assert!(
            rx.recv_timeout(idle).is_err(),
            "ticked after the call ended"
        );
        let pass = gate.enter(Duration::ZERO).unwrap();
        rx.recv_timeout(Duration::from_secs(10))
            .expect("woken again");
        drop(pass);
        // Stopping wakes an idle ticker.
        stop.store(true, Ordering::Relaxed);
        gate.wake_all();
        ticker.join().unwrap();
    }

    #[test]
    fn reservation_follows_the_cap() {
        assert_eq!(memory_reservation(Limits::CAP), 256 << 20);
        let small = Limits {
            memory_bytes: 1 << 20,
            ..Limits::CAP
        };
        assert_eq!(memory_reservation(small), 64 << 20);
    }
}
