// What a plan knows of the target's files. Every SSH session or SSM command costs a round trip
// (0.4–0.8 s per SSH session on the loaded test machine, seconds per SSM command), so the files a
// plan looks at are fetched in one script together with detection, then served from here; a
// write through the cache updates it.
import {sealPrelude, type ReadSealer} from './sealed-transfer.js'
import {shellQuote, type NodeTransport} from './transport.js'

const MARK = '@@LZ'

export class FileCache {
  private readonly files = new Map<string, Buffer | null>()
  private readonly links = new Map<string, string | null>()

  constructor(private readonly transport: NodeTransport) {}

  /**
   * A shell fragment printing each file (base64, or sealed to `sealer` for a transport that keeps
   * a record) and each symlink target, for absorb().
   */
  static probeScript(files: string[], links: string[], sealer?: ReadSealer): string {
    const show = sealer ? `echo "${MARK} S $1 $(wc -c < "$2")"; seal "$2"` : `echo "${MARK} F $1 $(wc -c < "$2")"; base64 < "$2"`
    const lines = [
      ...(sealer ? [sealPrelude(sealer.publicKeyPem)] : []),
      `p() { if [ -f "$2" ]; then ${show}; elif [ -e "$2" ]; then echo "${MARK} X $1"; else echo "${MARK} A $1"; fi; }`,
      `l() { if t=$(readlink "$2"); then echo "${MARK} L $1 $t"; else echo "${MARK} N $1"; fi; }`,
      ...files.map((f, i) => `p ${i} ${shellQuote(f)}`),
      ...links.map((f, i) => `l ${i} ${shellQuote(f)}`),
    ]
    return lines.join('\n')
  }

  /** Takes what probeScript printed. Entries that do not add up (truncated output) are left out. */
  absorb(output: string, files: string[], links: string[], sealer?: ReadSealer): void {
    const lines = output.split('\n')
    for (let i = 0; i < lines.length; i++) {
      const m = new RegExp(`^${MARK} ([FSXALN]) (\\d+)(?: (.*))?$`).exec(lines[i]!)
      if (!m) continue
      const [, kind, index, rest] = m
      const n = Number(index)
      if (kind === 'S' && sealer && i + 2 < lines.length) {
        let data: Buffer | undefined
        try {
          data = sealer.open(lines[i + 1]!, lines[i + 2]!)
        } catch {
          data = undefined // cut short: read again when needed
        }
        i += 2
        if (data && files[n] !== undefined && data.length === Number(rest)) this.files.set(files[n]!, data)
      } else if (kind === 'F') {
        let body = ''
        while (i + 1 < lines.length && !lines[i + 1]!.startsWith(MARK)) body += lines[++i]
        const data = Buffer.from(body, 'base64')
        if (files[n] !== undefined && data.length === Number(rest)) this.files.set(files[n]!, data)
      } else if (kind === 'A' && files[n] !== undefined) this.files.set(files[n]!, null)
      else if (kind === 'L' && links[n] !== undefined) this.links.set(links[n]!, rest ?? '')
      else if (kind === 'N' && links[n] !== undefined) this.links.set(links[n]!, null)
    }
  }

  async read(path: string): Promise<Buffer | undefined> {
    if (!this.files.has(path)) this.files.set(path, (await this.transport.readFile(path)) ?? null)
    return this.files.get(path) ?? undefined
  }

  async exists(path: string): Promise<boolean> {
    return (await this.read(path)) !== undefined
  }

  async write(path: string, data: Buffer | string, mode: number): Promise<void> {
    await this.transport.writeFileAtomic(path, data, mode)
    this.files.set(path, Buffer.from(data))
  }

  async readLink(path: string): Promise<string | undefined> {
    if (!this.links.has(path)) {
      const r = await this.transport.exec(`readlink ${shellQuote(path)}`)
      this.links.set(path, r.code === 0 ? r.stdout.trim() : null)
    }
    return this.links.get(path) ?? undefined
  }

  /** After a command changed these paths behind the cache's back. */
  forget(...paths: string[]): void {
    for (const p of paths) {
      this.files.delete(p)
      this.links.delete(p)
    }
  }
}
