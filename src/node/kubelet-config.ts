// kubelet's image-service endpoint in its KubeletConfiguration file: `imageServiceEndpoint`
// pointed at the snapshotter's socket sends every image call (and with it each pod's pull secret)
// to lazyctl's CRI image service, as a node set up for stargz-snapshotter or SOCI has it. EKS
// writes the file as JSON (AL2: /etc/kubernetes/kubelet/kubelet-config.json; AL2023's nodeadm:
// /etc/kubernetes/kubelet/config.json), kubeadm as YAML (/var/lib/kubelet/config.yaml). Only that
// one top-level key is touched; every other byte of the file stays as it was.
import {LazyError} from '../cli/errors.js'

export const IMAGE_SERVICE_KEY = 'imageServiceEndpoint'

export interface KubeletConfigEdit {
  changed: boolean
  text: string
  /** The value the file had, if any. */
  previous?: string
}

/** `text` with `imageServiceEndpoint: endpoint`; JSON when the file starts with `{`, else YAML. */
export function setImageServiceEndpoint(text: string, endpoint: string, path: string): KubeletConfigEdit {
  return text.trimStart().startsWith('{') ? editJson(text, endpoint, path) : editYaml(text, endpoint, path)
}

function editJson(text: string, endpoint: string, path: string): KubeletConfigEdit {
  let config: unknown
  try {
    config = JSON.parse(text)
  } catch (err) {
    throw new LazyError('NODE_STEP_FAILED', `${path} is not valid JSON: ${(err as Error).message}`, {hint: 'fix the kubelet config by hand, or name the right file with --kubelet-config'})
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new LazyError('NODE_STEP_FAILED', `${path} is not a KubeletConfiguration object`)
  const table = config as Record<string, unknown>
  const previous = typeof table[IMAGE_SERVICE_KEY] === 'string' ? (table[IMAGE_SERVICE_KEY] as string) : undefined
  if (previous === endpoint) return {changed: false, text, previous}
  table[IMAGE_SERVICE_KEY] = endpoint
  const indent = /^\{\s*\n([ \t]+)"/.exec(text)?.[1] ?? '  '
  return {changed: true, text: `${JSON.stringify(table, null, indent)}${text.endsWith('\n') ? '\n' : ''}`, ...(previous !== undefined ? {previous} : {})}
}

const YAML_KEY = new RegExp(`^${IMAGE_SERVICE_KEY}:[ \\t]*(.*?)[ \\t]*$`, 'm')

function editYaml(text: string, endpoint: string, path: string): KubeletConfigEdit {
  if (!/^kind:\s*KubeletConfiguration\s*$/m.test(text)) {
    throw new LazyError('NODE_STEP_FAILED', `${path} is not a KubeletConfiguration (no top-level "kind: KubeletConfiguration")`, {hint: 'name kubelet\'s config file with --kubelet-config (kubelet --config=…)'})
  }
  const line = `${IMAGE_SERVICE_KEY}: ${JSON.stringify(endpoint)}`
  const match = YAML_KEY.exec(text)
  if (match) {
    const previous = match[1]!.replace(/^["']|["']$/g, '')
    if (previous === endpoint) return {changed: false, text, previous}
    return {changed: true, text: text.replace(YAML_KEY, line), previous}
  }
  return {changed: true, text: `${text}${text === '' || text.endsWith('\n') ? '' : '\n'}${line}\n`}
}
