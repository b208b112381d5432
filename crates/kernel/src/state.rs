//! The program's state map (`fqdn_state`, `ebpf/lib/state.h`): the clock the program reads
//! ([`Clock`]) and the flags userspace and the programs set (fail closed, ingress seen).

use fqdnpath_datapath::abi::State;
use fqdnpath_names::Timestamp;

use crate::datapath::KernelDatapath;
use crate::error::{KernelError, map_err};

/// Which clock the program reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// The `now` passed to [`Datapath::egress`](fqdnpath_datapath::Datapath::egress) and
    /// friends (written into the state map before each test run): conntrack ages exactly as in
    /// the model.
    Virtual,
    /// `bpf_ktime_get_ns()`, `CLOCK_MONOTONIC`: for real traffic on an attached interface.
    Kernel,
}

impl KernelDatapath {
    /// The clock the program reads.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    pub(crate) fn write_state(&mut self, state: State) -> Result<(), KernelError> {
        self.state
            .set(0, state.to_bytes(), 0)
            .map_err(map_err("update", "fqdn_state"))?;
        self.state_shadow = state;
        Ok(())
    }

    /// Reads the state back (the programs set `INGRESS_SEEN`).
    fn read_state(&mut self) -> Result<State, KernelError> {
        let bytes = self
            .state
            .get(&0, 0)
            .map_err(map_err("lookup", "fqdn_state"))?;
        self.state_shadow = State::from_bytes(&bytes);
        Ok(self.state_shadow)
    }

    pub(crate) fn set_state_flag(&mut self, flag: u32) -> Result<(), KernelError> {
        let mut state = self.read_state()?;
        state.flags |= flag;
        self.write_state(state)
    }

    /// Sets the virtual clock (a no-op under [`Clock::Kernel`]).
    pub(crate) fn set_now(&mut self, now: Timestamp) -> Result<(), KernelError> {
        if self.clock != Clock::Virtual || self.state_shadow.now_ns == now.as_nanos() {
            return Ok(());
        }
        // The programs may have set INGRESS_SEEN since the last write: read, then write.
        let mut state = self.read_state()?;
        state.now_ns = now.as_nanos();
        self.write_state(state)
    }

    /// The time the program would read now.
    pub(crate) fn now(&self) -> Timestamp {
        match self.clock {
            Clock::Virtual => Timestamp::from_nanos(self.state_shadow.now_ns),
            Clock::Kernel => {
                let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
                let nanos = u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000_000
                    + u64::try_from(t.tv_nsec).unwrap_or(0);
                Timestamp::from_nanos(nanos)
            }
        }
    }
}
