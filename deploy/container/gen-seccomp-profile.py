#!/usr/bin/env python3
"""Writes seccomp-dmqnode.json: a seccomp profile for containers that allows
what dmqnode (and bash, for the image's HEALTHCHECK) needs, io_uring included.

Usage: python3 gen-seccomp-profile.py > seccomp-dmqnode.json
Needs `systemd-analyze` (systemd >= 252) for the syscall groups.

The allow-list is systemd's @system-service group (the calls of an ordinary
service, as `systemd-analyze syscall-filter @system-service` expands it)
plus io_uring_setup/io_uring_enter/io_uring_register, less the calls that
container runtimes' default profiles only allow with capabilities the
container does not have:
  - keyctl, add_key, request_key (kernel keyrings are not namespaced),
  - userfaultfd, kcmp,
  - unshare, setns, and clone/clone3 with namespace flags: no new
    namespaces (no unprivileged user namespaces);
clone is allowed without namespace flags, clone3 answers ENOSYS (glibc then
uses clone), personality only for the usual personas. Everything else fails
with EPERM. The format is the OCI runtime spec's (Docker, containerd, CRI-O
and the kubelet's Localhost profiles all read it).
"""
import json
import subprocess
import sys

IO_URING = ["io_uring_setup", "io_uring_enter", "io_uring_register"]
DENY = {"keyctl", "add_key", "request_key", "userfaultfd", "kcmp",
        "unshare", "setns", "clone", "clone3", "personality"}
# CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET: 0x7e020000
CLONE_NS_FLAGS = 0x7E020000
# PER_LINUX, PER_LINUX|UNAME26, PER_LINUX32, PER_LINUX32|UNAME26, query
PERSONAS = [0x0, 0x0008, 0x20000, 0x20008, 0xFFFFFFFF]


def groups():
    out = subprocess.run(["systemd-analyze", "syscall-filter"], check=True,
                         capture_output=True, text=True).stdout
    sets, current = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            current = line.split()[0]
            sets[current] = []
        elif current and line.strip() and not line.lstrip().startswith("#"):
            sets[current].append(line.split()[0])
    return sets


def expand(names, sets):
    result = set()
    for name in names:
        result |= expand(sets[name], sets) if name.startswith("@") else {name}
    return result


def main():
    allow = (expand(["@system-service"], groups()) | set(IO_URING)) - DENY
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"],
        "syscalls": [
            {"names": sorted(allow), "action": "SCMP_ACT_ALLOW"},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": CLONE_NS_FLAGS, "valueTwo": 0,
                       "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO",
             "errnoRet": 38},
        ] + [
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": p, "op": "SCMP_CMP_EQ"}]}
            for p in PERSONAS
        ],
    }
    json.dump(profile, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
