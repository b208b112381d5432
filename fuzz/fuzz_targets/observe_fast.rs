//! Differential: the zero-allocation observation path against hickory-proto's.
//!
//! Each input is checked twice: as raw wire bytes, and as a structured response (`Shape`, built
//! by `arbitrary` from the same bytes) written to wire format with compression pointers, EDNS
//! options and records of several kinds, then optionally damaged byte by byte. Whenever the
//! fast path observes, hickory-proto must observe the same; `observe` and `observe_into` must
//! give hickory-proto's result or error for every input.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use fqdnpath_cache::{
    FastPath, ObservationBuf, observe, observe_fast, observe_hickory, observe_into,
};
use libfuzzer_sys::fuzz_target;

fn check(wire: &[u8], buf: &mut ObservationBuf) {
    let reference = observe_hickory(wire);
    let observed = observe_fast(wire, buf) == FastPath::Observed;
    if observed {
        match &reference {
            Ok(want) => assert_eq!(&buf.to_observation(), want, "fast path disagrees"),
            Err(e) => panic!("fast path observed {buf:?}; hickory-proto said {e:?}"),
        }
    }
    match (observe(wire), &reference) {
        (Ok(got), Ok(want)) => assert_eq!(&got, want),
        (Err(got), Err(want)) => assert_eq!(format!("{got:?}"), format!("{want:?}")),
        (got, want) => panic!("observe gave {got:?}; hickory-proto {want:?}"),
    }
    // On a decline `observe_into` is hickory-proto's reading copied in; the proptests check
    // that copy. Here it runs where the fast path answers.
    if observed {
        observe_into(wire, buf).expect("the fast path observed it");
        assert_eq!(buf.to_observation(), reference.expect("checked above"));
    }
}

/// A name: labels, and whether to compress its longest suffix already written.
#[derive(Arbitrary, Debug)]
struct NameSpec {
    labels: Vec<Label>,
    compress: bool,
}

/// A label: usually a short hostname label, sometimes raw bytes.
#[derive(Arbitrary, Debug)]
enum Label {
    Host(u8, u8),
    Raw(Vec<u8>),
}

impl Label {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Self::Host(kind, len) => {
                const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-_";
                (0..=(len % 12))
                    .map(|i| CHARS[(usize::from(*kind) + usize::from(i) * 7) % CHARS.len()])
                    .collect()
            }
            Self::Raw(bytes) => bytes.iter().copied().take(70).collect(),
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Data {
    A([u8; 4]),
    Aaaa([u8; 16]),
    Mapped([u8; 4]),
    Cname(NameSpec),
    Other(u16, Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Rec {
    /// 0: the question's name; otherwise a name of its own.
    owner: Option<NameSpec>,
    data: Data,
    ttl: u32,
    /// Class IN unless this is given.
    class: Option<u16>,
    /// 0..=5: answer; 6: authority; 7: additional.
    section: u8,
}

#[derive(Arbitrary, Debug)]
struct Opt {
    payload: u16,
    ttl: u32,
    options: Vec<(u16, Vec<u8>)>,
    /// Put a second OPT record in too.
    twice: bool,
}

#[derive(Arbitrary, Debug)]
struct Shape {
    id: u16,
    flags: u16,
    qname: NameSpec,
    qtype: u16,
    qclass: Option<u16>,
    records: Vec<Rec>,
    opt: Option<Opt>,
    trailing: Vec<u8>,
    damage: Vec<(u16, u8)>,
    truncate: Option<u16>,
}

/// Writes names with compression against the suffixes written so far.
struct Writer {
    out: Vec<u8>,
    suffixes: Vec<(Vec<Vec<u8>>, usize)>,
}

impl Writer {
    fn name(&mut self, spec: &NameSpec) {
        let labels: Vec<Vec<u8>> = spec
            .labels
            .iter()
            .take(8)
            .map(Label::bytes)
            .filter(|l| !l.is_empty())
            .map(|mut l| {
                l.truncate(63);
                l
            })
            .collect();
        for i in 0..labels.len() {
            let suffix = &labels[i..];
            if spec.compress {
                if let Some(&(_, at)) = self.suffixes.iter().find(|(s, _)| s == suffix) {
                    let at = u16::try_from(at).unwrap_or(0x3FFF) & 0x3FFF;
                    self.out.extend_from_slice(&(0xC000 | at).to_be_bytes());
                    return;
                }
            }
            if self.out.len() < 0x3FFF {
                self.suffixes.push((suffix.to_vec(), self.out.len()));
            }
            self.out.push(u8::try_from(labels[i].len()).unwrap_or(63));
            self.out.extend_from_slice(&labels[i]);
        }
        self.out.push(0);
    }

    fn u16(&mut self, v: u16) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    fn record(&mut self, qname: &NameSpec, rec: &Rec) {
        match &rec.owner {
            Some(owner) => self.name(owner),
            None => self.name(qname),
        }
        let rtype = match &rec.data {
            Data::A(_) => 1,
            Data::Aaaa(_) | Data::Mapped(_) => 28,
            Data::Cname(_) => 5,
            Data::Other(t, _) => *t,
        };
        self.u16(rtype);
        self.u16(rec.class.unwrap_or(1));
        self.out.extend_from_slice(&rec.ttl.to_be_bytes());
        let len_at = self.out.len();
        self.u16(0);
        let start = self.out.len();
        match &rec.data {
            Data::A(ip) => self.out.extend_from_slice(ip),
            Data::Aaaa(ip) => self.out.extend_from_slice(ip),
            Data::Mapped(ip) => {
                self.out.extend_from_slice(&[0; 10]);
                self.out.extend_from_slice(&[0xff, 0xff]);
                self.out.extend_from_slice(ip);
            }
            Data::Cname(target) => self.name(target),
            Data::Other(_, data) => self.out.extend_from_slice(data),
        }
        let len = u16::try_from(self.out.len() - start).unwrap_or(u16::MAX);
        self.out[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
    }

    fn opt(&mut self, opt: &Opt) {
        self.out.push(0);
        self.u16(41);
        self.u16(opt.payload);
        self.out.extend_from_slice(&opt.ttl.to_be_bytes());
        let len_at = self.out.len();
        self.u16(0);
        let start = self.out.len();
        for (code, data) in opt.options.iter().take(4) {
            self.u16(*code);
            self.u16(u16::try_from(data.len()).unwrap_or(u16::MAX));
            self.out.extend_from_slice(data);
        }
        let len = u16::try_from(self.out.len() - start).unwrap_or(u16::MAX);
        self.out[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
    }
}

impl Shape {
    fn wire(&self) -> Vec<u8> {
        let mut w = Writer {
            out: Vec::with_capacity(512),
            suffixes: Vec::new(),
        };
        let records: Vec<&Rec> = self.records.iter().take(12).collect();
        let section = |r: &&Rec| match r.section % 8 {
            0..=5 => 0,
            6 => 1,
            _ => 2,
        };
        let count = |s| records.iter().filter(|r| section(r) == s).count();
        let opts = self.opt.as_ref().map_or(0, |o| 1 + usize::from(o.twice));
        w.u16(self.id);
        // Mostly a plain response; the flags are arbitrary otherwise.
        let flags = if self.flags & 0x8000 == 0 {
            0x8180 | (self.flags & 0x000F)
        } else {
            self.flags
        };
        w.u16(flags);
        w.u16(1);
        for n in [count(0), count(1), count(2) + opts] {
            w.u16(u16::try_from(n).unwrap_or(u16::MAX));
        }
        w.name(&self.qname);
        w.u16(self.qtype);
        w.u16(self.qclass.unwrap_or(1));
        for s in 0..3 {
            for r in records.iter().filter(|r| section(r) == s) {
                w.record(&self.qname, r);
            }
            if s == 2 {
                if let Some(opt) = &self.opt {
                    w.opt(opt);
                    if opt.twice {
                        w.opt(opt);
                    }
                }
            }
        }
        let mut wire = w.out;
        wire.extend_from_slice(&self.trailing);
        for &(at, byte) in self.damage.iter().take(4) {
            if !wire.is_empty() {
                let len = wire.len();
                wire[usize::from(at) % len] = byte;
            }
        }
        if let Some(len) = self.truncate {
            wire.truncate(usize::from(len));
        }
        wire
    }
}

fuzz_target!(|data: &[u8]| {
    let mut buf = ObservationBuf::new();
    check(data, &mut buf);
    if let Ok(shape) = Shape::arbitrary(&mut Unstructured::new(data)) {
        check(&shape.wire(), &mut buf);
    }
});
