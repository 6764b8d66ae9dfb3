//! A small disk of a test's own: a tmpfs in a user and mount namespace
//! (`unshare -rm`, no root needed) kept by a holder process, which node
//! processes enter (`nsenter`) and the test reaches through
//! `/proc/<holder>/root`. Linux only; needs util-linux's `unshare` and
//! `nsenter` (Debian's base system has them).

use super::{example_binary, ServerProcess};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// A tmpfs of a few megabytes that the test can fill and empty.
pub struct SmallDisk {
    holder: Child,
    mount: String,
}

impl SmallDisk {
    /// A fresh tmpfs of `megabytes`.
    pub fn new(megabytes: u32) -> SmallDisk {
        // One mount point per disk: removing a directory that is a mount point
        // in another namespace unmounts it there (Linux), so two disks of one
        // test process must never share one.
        static DISKS: AtomicU32 = AtomicU32::new(0);
        let n = DISKS.fetch_add(1, Ordering::Relaxed);
        let mount = format!("/tmp/crucial-small-disk-{}-{n}", std::process::id());
        std::fs::create_dir_all(&mount).expect("mount point");
        let mut holder = Command::new("unshare")
            .args(["-rm", "sh", "-c"])
            .arg(format!(
                "mount -t tmpfs -o size={megabytes}m tmpfs {mount} && echo mounted && exec sleep 3600"
            ))
            .stdout(Stdio::piped())
            .spawn()
            .expect("unshare (util-linux) starts a namespace for the small disk");
        let mut line = String::new();
        std::io::BufReader::new(holder.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read");
        assert_eq!(
            line.trim(),
            "mounted",
            "a tmpfs in a user namespace (unshare -rm) could not be mounted"
        );
        SmallDisk { holder, mount }
    }

    /// A path inside the small disk, as the test sees it.
    pub fn outside(&self, path: &str) -> String {
        format!("/proc/{}/root{}/{path}", self.holder.id(), self.mount)
    }

    /// A path inside the small disk, as a process in it sees it.
    pub fn inside(&self, path: &str) -> String {
        format!("{}/{path}", self.mount)
    }

    /// Fills the disk with a file named `name` (remove it to make room).
    pub fn fill(&self, name: &str) -> String {
        use std::io::Write;
        let fill = self.outside(name);
        let mut file = std::fs::File::create(&fill).expect("filler");
        let chunk = vec![1u8; 1 << 20];
        while file.write_all(&chunk).is_ok() {}
        fill
    }

    /// `command`, run inside the disk's namespace.
    pub fn wrap(&self, command: Command) -> Command {
        let mut inside = Command::new("nsenter");
        inside
            .args(["-t", &self.holder.id().to_string()])
            .args(["-U", "-m", "--preserve-credentials", "--"])
            .arg(command.get_program())
            .args(command.get_args());
        inside
    }

    /// The fixture node on `data` inside the small disk.
    pub fn node(&self, args: &[&str]) -> ServerProcess {
        let mut command = Command::new(example_binary("fixture-node"));
        command
            .args(["--listen", "127.0.0.1:0", "--workers", "2"])
            .args(["--data-dir", &self.inside("data")])
            .args(args);
        ServerProcess::start(self.wrap(command))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        let _ = std::fs::remove_dir(&self.mount);
    }
}
