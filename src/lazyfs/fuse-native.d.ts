// Types for the parts of fuse-native (CommonJS, no bundled types) that lazyfs uses.
declare module 'fuse-native' {
  export interface FuseStat {
    mode: number
    uid: number
    gid: number
    size: number
    dev?: number
    nlink: number
    ino: number
    rdev: number
    blksize: number
    blocks: number
    atime: number | Date
    mtime: number | Date
    ctime: number | Date
  }

  export interface FuseStatfs {
    bsize: number
    frsize: number
    blocks: number
    bfree: number
    bavail: number
    files: number
    ffree: number
    favail: number
    fsid: number
    flag: number
    namemax: number
  }

  export interface FuseOperations {
    init?(cb: (code: number) => void): void
    access?(path: string, mode: number, cb: (code: number) => void): void
    statfs?(path: string, cb: (code: number, statfs?: FuseStatfs) => void): void
    getattr?(path: string, cb: (code: number, stat?: FuseStat) => void): void
    readdir?(path: string, cb: (code: number, names?: string[], stats?: FuseStat[]) => void): void
    readlink?(path: string, cb: (code: number, target?: string) => void): void
    open?(path: string, flags: number, cb: (code: number, fd?: number) => void): void
    opendir?(path: string, flags: number, cb: (code: number, fd?: number) => void): void
    read?(path: string, fd: number, buffer: Buffer, length: number, position: number, cb: (bytesOrError: number) => void): void
    release?(path: string, fd: number, cb: (code: number) => void): void
    releasedir?(path: string, fd: number, cb: (code: number) => void): void
    getxattr?(path: string, name: string, position: number, cb: (code: number, value?: Buffer) => void): void
    listxattr?(path: string, cb: (code: number, names?: string[]) => void): void
    [name: string]: ((...args: never[]) => void) | undefined
  }

  export interface FuseOptions {
    force?: boolean
    mkdir?: boolean
    debug?: boolean
    allowOther?: boolean
    allowRoot?: boolean
    autoUnmount?: boolean
    defaultPermissions?: boolean
    maxRead?: number
    fsname?: string
    subtype?: string
    kernelCache?: boolean
    autoCache?: boolean
    entryTimeout?: number
    attrTimeout?: number
    timeout?: number | false | Record<string, number | false>
    [option: string]: unknown
  }

  class Fuse {
    constructor(mountpoint: string, ops: FuseOperations, options?: FuseOptions)
    readonly mnt: string
    mount(cb: (err: Error | null) => void): void
    unmount(cb: (err: Error | null) => void): void
    protected _fuseOptions(): string
    static unmount(mountpoint: string, cb: (err: Error | null) => void): void
    static readonly EPERM: number
    static readonly ENOENT: number
    static readonly EIO: number
    static readonly EBADF: number
    static readonly EACCES: number
    static readonly ENOTDIR: number
    static readonly EISDIR: number
    static readonly EINVAL: number
    static readonly EROFS: number
    static readonly ENODATA: number
    static readonly ERANGE: number
    static readonly ENOSYS: number
  }
  export default Fuse
}
