// A counting semaphore: bounds how many range reads of one layer are in flight at once, so a burst
// of page faults cannot open hundreds of HTTP requests against the registry.

export class Semaphore {
  private available: number
  private readonly waiters: Array<() => void> = []

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`semaphore limit must be a positive integer, got ${limit}`)
    this.available = limit
  }

  /** Runs `task` once a slot is free, and frees the slot when it settles. */
  async run<T>(task: () => Promise<T>): Promise<T> {
    await this.acquire()
    try {
      return await task()
    } finally {
      this.release()
    }
  }

  get inUse(): number {
    return this.limit - this.available
  }

  private acquire(): Promise<void> {
    if (this.available > 0) {
      this.available--
      return Promise.resolve()
    }
    return new Promise((resolve) => this.waiters.push(resolve))
  }

  private release(): void {
    const next = this.waiters.shift()
    // Hand the slot straight to the next waiter, so a newcomer cannot overtake it.
    if (next) next()
    else this.available++
  }
}
