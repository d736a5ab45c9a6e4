// Images the benchmarks run, converted once and cached: `lazyctl convert` into OCI layouts keyed
// by the converter's code, then pushed to the bench's registry with their digests kept.
import {existsSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {PACKAGE_ROOT} from '../../src/paths.js'
import {pushImage} from '../../test/rig/images.js'
import {convertedLayout, converterKey, pruneConvertedLayouts} from './demo-image.js'
import type {LazyctlStack} from './stack.js'
import {assertSucceeded, runTimed} from './timed-run.js'

/**
 * `lazyctl convert` of one image into an OCI layout cached beside the demo image, keyed by the
 * source, the flags and the code of lazyctl's converter (dist/src/estargz and dist/src/convert),
 * then pushed to the registry with skopeo (digests kept): a gzip-9 conversion of the demo image
 * takes minutes, and the benchmark measures starts, not conversions. The conversion time is kept
 * with the layout and reported.
 */
export async function convertCached(s: Pick<LazyctlStack, 'lazyctl' | 'env' | 'registry'>, o: {name: string; source: string; extra: string[]; repository: string; tag: string}, say: (line: string) => void): Promise<{ms: number; cached: boolean}> {
  const key = converterKey(PACKAGE_ROOT, JSON.stringify([o.source, o.extra]), o.extra.length ? readFileSync(o.extra[1]!) : '')
  const {layout, timeFile} = convertedLayout(o.name, key)
  let cached = true
  if (!existsSync(timeFile)) {
    cached = false
    rmSync(layout, {recursive: true, force: true})
    say(`converting ${o.name}: lazyctl convert ${o.extra.join(' ')} ${o.source} oci:${layout}:${o.tag}`)
    const [cmd, args] = s.lazyctl(['convert', '--quiet', ...o.extra, o.source, `oci:${layout}:${o.tag}`])
    const run = assertSucceeded(await runTimed(cmd, args, {env: s.env}), `converting ${o.name}`)
    writeFileSync(timeFile, `${Math.round(run.exitMs)}\n`)
    pruneConvertedLayouts(o.name, key)
  }
  await pushImage(`oci:${layout}:${o.tag}`, `${o.repository}:${o.tag}`, s.registry)
  return {ms: Number(readFileSync(timeFile, 'utf8')), cached}
}

/** Layer digests and sizes of `repository:tag` as the registry serves its manifest. */
export async function pushedLayers(s: Pick<LazyctlStack, 'registry'>, repository: string, tag: string): Promise<{digest: string; size: number}[]> {
  const res = await fetch(`${s.registry.url}/v2/${repository}/manifests/${tag}`, {headers: {accept: 'application/vnd.oci.image.manifest.v1+json'}})
  if (!res.ok) throw new Error(`manifest ${repository}:${tag}: HTTP ${res.status}`)
  const manifest = (await res.json()) as {layers: {digest: string; size: number}[]}
  return manifest.layers.map(({digest, size}) => ({digest, size}))
}

