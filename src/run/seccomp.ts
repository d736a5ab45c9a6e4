// The seccomp filter of a container. nerdctl applies containerd's default profile
// (contrib/seccomp, the same allowlist as Docker's): every syscall not named here fails with
// EPERM, a few are allowed only for some argument values, and some only when the container holds
// the capability that the kernel would check anyway (so `--cap-add` keeps working).
// `--security-opt seccomp=unconfined` drops the filter; `seccomp=FILE` uses a JSON profile.
// io_uring_setup/enter/register are not allowed, as in containerd 2.0 and moby 25, which removed
// them for their record of container escapes.

import {readFileSync} from 'node:fs'
import {LazyError} from '../cli/errors.js'

export interface SeccompArg {
  index: number
  value: number
  valueTwo?: number
  op: 'SCMP_CMP_EQ' | 'SCMP_CMP_MASKED_EQ'
}

export interface SeccompRule {
  names: string[]
  action: 'SCMP_ACT_ALLOW' | 'SCMP_ACT_ERRNO'
  errnoRet?: number
  args?: SeccompArg[]
}

/** `linux.seccomp` of the OCI runtime spec. */
export interface SeccompProfile {
  defaultAction: string
  architectures?: string[]
  syscalls?: SeccompRule[]
}

/**
 * Allowed whatever the container's capabilities. (ptrace is here because since Linux 4.8 a traced
 * process's syscalls are checked by seccomp after the tracer's changes; containerd allows it from 4.8.)
 */
const ALWAYS_ALLOWED = [
  'accept', 'accept4', 'access', 'adjtimex', 'alarm', 'bind', 'brk', 'capget', 'capset', 'chdir', 'chmod', 'chown',
  'chown32', 'clock_adjtime', 'clock_adjtime64', 'clock_getres', 'clock_getres_time64', 'clock_gettime',
  'clock_gettime64', 'clock_nanosleep', 'clock_nanosleep_time64', 'close', 'close_range', 'connect',
  'copy_file_range', 'creat', 'dup', 'dup2', 'dup3', 'epoll_create', 'epoll_create1', 'epoll_ctl', 'epoll_ctl_old',
  'epoll_pwait', 'epoll_pwait2', 'epoll_wait', 'epoll_wait_old', 'eventfd', 'eventfd2', 'execve', 'execveat', 'exit',
  'exit_group', 'faccessat', 'faccessat2', 'fadvise64', 'fadvise64_64', 'fallocate', 'fanotify_mark', 'fchdir',
  'fchmod', 'fchmodat', 'fchown', 'fchown32', 'fchownat', 'fcntl', 'fcntl64', 'fdatasync', 'fgetxattr', 'flistxattr',
  'flock', 'fork', 'fremovexattr', 'fsetxattr', 'fstat', 'fstat64', 'fstatat64', 'fstatfs', 'fstatfs64', 'fsync',
  'ftruncate', 'ftruncate64', 'futex', 'futex_time64', 'futex_waitv', 'futimesat', 'getcpu', 'getcwd', 'getdents',
  'getdents64', 'getegid', 'getegid32', 'geteuid', 'geteuid32', 'getgid', 'getgid32', 'getgroups', 'getgroups32',
  'getitimer', 'getpeername', 'getpgid', 'getpgrp', 'getpid', 'getppid', 'getpriority', 'getrandom', 'getresgid',
  'getresgid32', 'getresuid', 'getresuid32', 'getrlimit', 'get_robust_list', 'getrusage', 'getsid', 'getsockname',
  'getsockopt', 'get_thread_area', 'gettid', 'gettimeofday', 'getuid', 'getuid32', 'getxattr', 'inotify_add_watch',
  'inotify_init', 'inotify_init1', 'inotify_rm_watch', 'io_cancel', 'ioctl', 'io_destroy', 'io_getevents',
  'io_pgetevents', 'io_pgetevents_time64', 'ioprio_get', 'ioprio_set', 'io_setup', 'io_submit', 'ipc', 'kill', 'landlock_add_rule', 'landlock_create_ruleset',
  'landlock_restrict_self', 'lchown', 'lchown32', 'lgetxattr', 'link', 'linkat', 'listen', 'listxattr', 'llistxattr',
  '_llseek', 'lremovexattr', 'lseek', 'lsetxattr', 'lstat', 'lstat64', 'madvise', 'membarrier', 'memfd_create',
  'memfd_secret', 'mincore', 'mkdir', 'mkdirat', 'mknod', 'mknodat', 'mlock', 'mlock2', 'mlockall', 'mmap', 'mmap2',
  'mprotect', 'mq_getsetattr', 'mq_notify', 'mq_open', 'mq_timedreceive', 'mq_timedreceive_time64', 'mq_timedsend',
  'mq_timedsend_time64', 'mq_unlink', 'mremap', 'msgctl', 'msgget', 'msgrcv', 'msgsnd', 'msync', 'munlock',
  'munlockall', 'munmap', 'nanosleep', 'newfstatat', '_newselect', 'open', 'openat', 'openat2', 'pause', 'pidfd_open',
  'pidfd_send_signal', 'pipe', 'pipe2', 'poll', 'ppoll', 'ppoll_time64', 'prctl', 'pread64', 'preadv', 'preadv2',
  'prlimit64', 'process_mrelease', 'pselect6', 'pselect6_time64', 'ptrace', 'pwrite64', 'pwritev', 'pwritev2', 'read',
  'readahead', 'readlink', 'readlinkat', 'readv', 'recv', 'recvfrom', 'recvmmsg', 'recvmmsg_time64', 'recvmsg',
  'remap_file_pages', 'removexattr', 'rename', 'renameat', 'renameat2', 'restart_syscall', 'rmdir', 'rseq',
  'rt_sigaction', 'rt_sigpending', 'rt_sigprocmask', 'rt_sigqueueinfo', 'rt_sigreturn', 'rt_sigsuspend',
  'rt_sigtimedwait', 'rt_sigtimedwait_time64', 'rt_tgsigqueueinfo', 'sched_getaffinity', 'sched_getattr',
  'sched_getparam', 'sched_get_priority_max', 'sched_get_priority_min', 'sched_getscheduler', 'sched_rr_get_interval',
  'sched_rr_get_interval_time64', 'sched_setaffinity', 'sched_setattr', 'sched_setparam', 'sched_setscheduler',
  'sched_yield', 'seccomp', 'select', 'semctl', 'semget', 'semop', 'semtimedop', 'semtimedop_time64', 'send',
  'sendfile', 'sendfile64', 'sendmmsg', 'sendmsg', 'sendto', 'setfsgid', 'setfsgid32', 'setfsuid', 'setfsuid32',
  'setgid', 'setgid32', 'setgroups', 'setgroups32', 'setitimer', 'setpgid', 'setpriority', 'setregid', 'setregid32',
  'setresgid', 'setresgid32', 'setresuid', 'setresuid32', 'setreuid', 'setreuid32', 'setrlimit', 'set_robust_list',
  'setsid', 'setsockopt', 'set_thread_area', 'set_tid_address', 'setuid', 'setuid32', 'setxattr', 'shmat', 'shmctl',
  'shmdt', 'shmget', 'shutdown', 'sigaltstack', 'signalfd', 'signalfd4', 'sigprocmask', 'sigreturn', 'socket',
  'socketcall', 'socketpair', 'splice', 'stat', 'stat64', 'statfs', 'statfs64', 'statx', 'symlink', 'symlinkat', 'sync',
  'sync_file_range', 'syncfs', 'sysinfo', 'tee', 'tgkill', 'time', 'timer_create', 'timer_delete', 'timer_getoverrun',
  'timer_gettime', 'timer_gettime64', 'timer_settime', 'timer_settime64', 'timerfd_create', 'timerfd_gettime',
  'timerfd_gettime64', 'timerfd_settime', 'timerfd_settime64', 'times', 'tkill', 'truncate', 'truncate64',
  'ugetrlimit', 'umask', 'uname', 'unlink', 'unlinkat', 'utime', 'utimensat', 'utimensat_time64', 'utimes', 'vfork',
  'vmsplice', 'wait4', 'waitid', 'waitpid', 'write', 'writev',
]

/**
 * personality(2) only for the values programs ask for in practice: PER_LINUX, PER_LINUX32,
 * UNAME26 on each, and 0xffffffff (a query). Others (e.g. ADDR_NO_RANDOMIZE) are refused.
 */
const PERSONALITIES = [0x0, 0x0008, 0x20000, 0x20008, 0xffffffff]

/** Syscalls of one CPU family, keyed by Node's process.arch, with the seccomp architectures filtered. */
const BY_ARCH: Record<string, {architectures: string[]; extra: string[]}> = {
  x64: {architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'], extra: ['arch_prctl', 'modify_ldt']},
  arm64: {
    architectures: ['SCMP_ARCH_ARM', 'SCMP_ARCH_AARCH64'],
    extra: ['arm_fadvise64_64', 'arm_sync_file_range', 'sync_file_range2', 'breakpoint', 'cacheflush', 'set_tls'],
  },
  ppc64: {architectures: ['SCMP_ARCH_PPC64LE'], extra: ['sync_file_range2', 'swapcontext']},
  s390x: {architectures: ['SCMP_ARCH_S390', 'SCMP_ARCH_S390X'], extra: ['s390_pci_mmio_read', 's390_pci_mmio_write', 's390_runtime_instr']},
  riscv64: {architectures: ['SCMP_ARCH_RISCV64'], extra: ['riscv_flush_icache']},
}

/** Syscalls allowed when the bounding set holds the capability the kernel checks for them. */
const BY_CAPABILITY: Record<string, string[]> = {
  CAP_DAC_READ_SEARCH: ['open_by_handle_at'],
  CAP_SYS_ADMIN: [
    'bpf', 'clone', 'clone3', 'fanotify_init', 'fsconfig', 'fsmount', 'fsopen', 'fspick', 'lookup_dcookie', 'mount',
    'mount_setattr', 'move_mount', 'name_to_handle_at', 'open_tree', 'perf_event_open', 'quotactl', 'quotactl_fd',
    'setdomainname', 'sethostname', 'setns', 'syslog', 'umount', 'umount2', 'unshare',
  ],
  CAP_SYS_BOOT: ['reboot'],
  CAP_SYS_CHROOT: ['chroot'],
  CAP_SYS_MODULE: ['delete_module', 'init_module', 'finit_module'],
  CAP_SYS_PACCT: ['acct'],
  CAP_SYS_PTRACE: ['kcmp', 'pidfd_getfd', 'process_madvise', 'process_vm_readv', 'process_vm_writev', 'ptrace'],
  CAP_SYS_RAWIO: ['iopl', 'ioperm'],
  CAP_SYS_TIME: ['settimeofday', 'stime', 'clock_settime', 'clock_settime64'],
  CAP_SYS_TTY_CONFIG: ['vhangup'],
  CAP_SYSLOG: ['syslog'],
  CAP_BPF: ['bpf'],
  CAP_PERFMON: ['perf_event_open'],
}

/** The clone(2) flags that make new namespaces: refused without CAP_SYS_ADMIN. */
const CLONE_NAMESPACE_FLAGS = 0x00020000 /* NEWNS */ | 0x04000000 /* NEWUTS */ | 0x08000000 /* NEWIPC */ |
  0x10000000 /* NEWUSER */ | 0x20000000 /* NEWPID */ | 0x40000000 /* NEWNET */ | 0x02000000 /* NEWCGROUP */

const ENOSYS = 38

/** containerd's default profile for a container with these bounding capabilities. */
export function defaultSeccompProfile(boundingCapabilities: readonly string[], arch: string = process.arch): SeccompProfile {
  const family = BY_ARCH[arch]
  const rules: SeccompRule[] = [
    {names: [...ALWAYS_ALLOWED], action: 'SCMP_ACT_ALLOW'},
    ...PERSONALITIES.map((value): SeccompRule => ({names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{index: 0, value, op: 'SCMP_CMP_EQ'}]})),
  ]
  if (family) rules.push({names: family.extra, action: 'SCMP_ACT_ALLOW'})
  for (const cap of boundingCapabilities) {
    const names = BY_CAPABILITY[cap]
    if (names) rules.push({names: [...names], action: 'SCMP_ACT_ALLOW'})
  }
  if (!boundingCapabilities.includes('CAP_SYS_ADMIN')) {
    // clone without namespace flags (threads, fork); s390's clone takes the flags second.
    const flagsArg = arch === 's390x' ? 1 : 0
    rules.push({names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{index: flagsArg, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ'}]})
    // clone3 passes its flags in memory, where seccomp cannot look. ENOSYS (not EPERM) makes libc
    // fall back to clone, which the rule above can check.
    rules.push({names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS})
  }
  return {defaultAction: 'SCMP_ACT_ERRNO', architectures: family?.architectures ?? [], syscalls: rules}
}

/** What `--security-opt seccomp=…` asked for: containerd's default, none, or a profile file's. */
export type SeccompChoice = {kind: 'default'} | {kind: 'unconfined'} | {kind: 'file'; profile: SeccompProfile}

/** Parses `--security-opt` values (nerdctl's syntax; `seccomp:` accepted like `seccomp=`). */
export function parseSecurityOpts(opts: readonly string[]): {seccomp: SeccompChoice} {
  let seccomp: SeccompChoice = {kind: 'default'}
  for (const opt of opts) {
    const m = /^([a-z-]+)[=:](.*)$/.exec(opt)
    if (m?.[1] !== 'seccomp') {
      throw new LazyError('USAGE', `unsupported --security-opt "${opt}": lazyctl supports seccomp=unconfined and seccomp=PROFILE.json`)
    }
    const value = m[2]!
    seccomp = value === 'unconfined' ? {kind: 'unconfined'} : {kind: 'file', profile: readSeccompProfile(value)}
  }
  return {seccomp}
}

function readSeccompProfile(path: string): SeccompProfile {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new LazyError('USAGE', `cannot read seccomp profile ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
  }
  let profile: unknown
  try {
    profile = JSON.parse(text)
  } catch (err) {
    throw new LazyError('USAGE', `seccomp profile ${path} is not JSON: ${(err as Error).message}`)
  }
  if (typeof profile !== 'object' || profile === null || typeof (profile as SeccompProfile).defaultAction !== 'string') {
    throw new LazyError('USAGE', `seccomp profile ${path} has no "defaultAction": expected an OCI linux.seccomp object`)
  }
  return profile as SeccompProfile
}
