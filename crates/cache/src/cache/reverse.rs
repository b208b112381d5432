//! The cache's reverse map, IP to the names holding it, kept per address family.

use std::hash::Hash;
use std::net::IpAddr;

use foldhash::fast::FixedState;
use fqdnpath_names::Fqdn;
use hashbrown::HashMap;
use hashbrown::hash_map::Entry as MapEntry;
use smallvec::SmallVec;

/// The names holding one IP, sorted. Nearly every IP has one name, kept inline: a `Vec` would
/// allocate 4 slots (80 bytes with the allocator's header) per IP.
type Names = SmallVec<[Fqdn; 1]>;

/// The reverse map: IP -> the names holding it. IPv4 and IPv6 addresses are kept in two
/// tables keyed by the address's integer, as the datapath's ipcache keeps them: an `IpAddr`
/// key is 17 bytes, so a bucket of one table for both would be 48 bytes where an IPv4
/// bucket is 32. At 1M addresses (2M buckets) that is 32 MB less, and 48 MB less at the peak
/// while the table doubles.
#[derive(Clone, Debug, Default)]
pub(super) struct Reverse {
    v4: HashMap<u32, Names, FixedState>,
    v6: HashMap<u128, Names, FixedState>,
}

impl Reverse {
    pub(super) fn get(&self, ip: IpAddr) -> Option<&Names> {
        match ip {
            IpAddr::V4(a) => self.v4.get(&u32::from(a)),
            IpAddr::V6(a) => self.v6.get(&u128::from(a)),
        }
    }

    /// The names of `ip`, an empty list put in first if it has none.
    pub(super) fn names_mut(&mut self, ip: IpAddr) -> &mut Names {
        match ip {
            IpAddr::V4(a) => self.v4.entry(u32::from(a)).or_default(),
            IpAddr::V6(a) => self.v6.entry(u128::from(a)).or_default(),
        }
    }

    /// Takes `name` off the names of `ip`, and `ip` out of the map once no name holds it.
    pub(super) fn remove_name(&mut self, ip: IpAddr, name: &Fqdn) {
        match ip {
            IpAddr::V4(a) => remove_name_at(&mut self.v4, u32::from(a), name),
            IpAddr::V6(a) => remove_name_at(&mut self.v6, u128::from(a), name),
        }
    }
}

/// [`Reverse::remove_name`] in one family's table: one probe finds the list, and the same
/// entry removes the key when the list empties.
fn remove_name_at<K: Hash + Eq>(table: &mut HashMap<K, Names, FixedState>, key: K, name: &Fqdn) {
    let MapEntry::Occupied(mut slot) = table.entry(key) else {
        return;
    };
    let names = slot.get_mut();
    if let Ok(at) = names.binary_search(name) {
        names.remove(at);
    }
    if names.is_empty() {
        slot.remove();
    }
}
