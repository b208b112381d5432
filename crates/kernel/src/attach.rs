//! Attaching the programs to an interface on TC egress and ingress (TCX links, with a netlink
//! clsact fallback), in the caller's network namespace or a named one, and detaching them
//! (explicitly, or when the datapath is dropped).

use std::fs::File;
use std::os::fd::AsFd as _;
use std::path::{Path, PathBuf};

use aya::programs::tc::{NlOptions, TcAttachOptions, TcError};
use aya::programs::{LinkOrder, TcAttachType};
use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};

use crate::datapath::KernelDatapath;
use crate::error::{KernelError, prog_err, tc_errno};
use crate::load::{PROG_EGRESS, PROG_INGRESS, classifier};

/// `EEXIST`: the clsact qdisc is already there.
const EEXIST: i32 = rustix::io::Errno::EXIST.raw_os_error();

/// How [`KernelDatapath::attach_with`] attaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttachMode {
    /// TCX links (kernel >= 6.6), else netlink clsact filters.
    Auto,
    /// Netlink clsact filters only.
    Netlink,
}

/// The programs attached to one interface; detached by [`KernelDatapath::detach`] or when
/// the datapath is dropped.
#[derive(Debug)]
pub struct Attachment {
    iface: String,
    netns: Option<String>,
    /// (program, TC direction, link), detached in reverse order.
    links: Vec<(&'static str, aya::programs::tc::SchedClassifierLinkId)>,
    /// Whether the netlink fallback was used (its filters outlive the process).
    netlink: bool,
}

impl Attachment {
    /// The interface.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// Whether the programs are attached through TCX links (else netlink clsact filters).
    pub fn is_tcx(&self) -> bool {
        !self.netlink
    }
}

/// This thread inside a network namespace; back in the namespace it came from on drop.
///
/// aya resolves interface names and speaks netlink in the calling thread's network
/// namespace, so attaching in a namespace means entering it on this thread and coming back
/// afterwards.
#[derive(Debug)]
pub(crate) struct InNamespace {
    home: File,
}

impl InNamespace {
    /// Moves this thread into the namespace named `name` (`/var/run/netns/<name>`).
    pub(crate) fn enter(name: &str) -> Result<Self, KernelError> {
        let open = |path: PathBuf| {
            File::open(&path).map_err(|source| KernelError::Namespace {
                op: "opening",
                path,
                source,
            })
        };
        let home = open(PathBuf::from("/proc/thread-self/ns/net"))?;
        let path = Path::new("/var/run/netns").join(name);
        let target = open(path.clone())?;
        move_into_link_name_space(target.as_fd(), Some(LinkNameSpaceType::Network)).map_err(
            |e| KernelError::Namespace {
                op: "entering",
                path,
                source: e.into(),
            },
        )?;
        Ok(Self { home })
    }
}

impl Drop for InNamespace {
    fn drop(&mut self) {
        if let Err(e) =
            move_into_link_name_space(self.home.as_fd(), Some(LinkNameSpaceType::Network))
        {
            // The thread would stay in a namespace that is about to be deleted: nothing it
            // does after this is trustworthy.
            panic!("could not return to the original network namespace: {e}");
        }
    }
}

impl KernelDatapath {
    /// Attaches the egress program on `iface`'s TC egress and the ingress program on its
    /// ingress (TCX links; netlink clsact filters on kernels without TCX), in the network
    /// namespace `netns` (a name under `/var/run/netns`) or the current one.
    pub fn attach(&mut self, iface: &str, netns: Option<&str>) -> Result<(), KernelError> {
        self.attach_with(iface, netns, AttachMode::Auto)
    }

    /// [`KernelDatapath::attach`], choosing how: `AttachMode::Netlink` skips TCX (what older
    /// kernels get; the filters outlive the process unless detached, which
    /// [`KernelDatapath::detach`] and the drop do).
    pub fn attach_with(
        &mut self,
        iface: &str,
        netns: Option<&str>,
        mode: AttachMode,
    ) -> Result<(), KernelError> {
        let _inside = netns.map(InNamespace::enter).transpose()?;
        let mut attachment = Attachment {
            iface: iface.to_owned(),
            netns: netns.map(str::to_owned),
            links: Vec::new(),
            netlink: false,
        };
        for (name, direction) in [
            (PROG_EGRESS, TcAttachType::Egress),
            (PROG_INGRESS, TcAttachType::Ingress),
        ] {
            let prog = classifier(&mut self.ebpf, name)?;
            let tcx = match mode {
                AttachMode::Auto => prog
                    .attach_with_options(
                        iface,
                        direction,
                        TcAttachOptions::TcxOrder(LinkOrder::default()),
                    )
                    .ok(),
                AttachMode::Netlink => None,
            };
            let link = if let Some(link) = tcx {
                link
            } else {
                // No TCX (kernel < 6.6): a clsact qdisc and a netlink filter.
                match aya::programs::tc::qdisc_add_clsact(iface) {
                    Ok(()) => {}
                    // Already there: EEXIST (which netlink also returns with its extended
                    // message "Exclusivity flag on, cannot modify").
                    Err(e)
                        if tc_errno(&e) == Some(EEXIST)
                            || matches!(e, TcError::AlreadyAttached) => {}
                    Err(e) => {
                        return Err(KernelError::Qdisc {
                            iface: iface.to_owned(),
                            source: Box::new(e),
                        });
                    }
                }
                attachment.netlink = true;
                prog.attach_with_options(
                    iface,
                    direction,
                    TcAttachOptions::Netlink(NlOptions::default()),
                )
                .map_err(prog_err("attach", name))?
            };
            attachment.links.push((name, link));
        }
        self.attachments.push(attachment);
        Ok(())
    }

    /// Detaches everything attached, from the namespaces it was attached in.
    pub fn detach(&mut self) -> Result<(), KernelError> {
        let mut first_error = None;
        while let Some(mut attachment) = self.attachments.pop() {
            let inside = match attachment
                .netns
                .as_deref()
                .map(InNamespace::enter)
                .transpose()
            {
                Ok(inside) => inside,
                Err(e) => {
                    // The namespace is gone, and the links with it.
                    first_error.get_or_insert(e);
                    continue;
                }
            };
            while let Some((name, link)) = attachment.links.pop() {
                let result = classifier(&mut self.ebpf, name)
                    .and_then(|p| p.detach(link).map_err(prog_err("detach", name)));
                if let Err(e) = result {
                    first_error.get_or_insert(e);
                }
            }
            drop(inside);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The interfaces the programs are attached to.
    pub fn attachments(&self) -> &[Attachment] {
        &self.attachments
    }
}

impl Drop for KernelDatapath {
    fn drop(&mut self) {
        if let Err(e) = self.detach() {
            eprintln!("fqdnpath-kernel: detaching on drop: {e}");
        }
    }
}
