// `lazyctl node manifest`: a DaemonSet that does on every node what `node setup --local` does.
// The image carries lazyctl under /opt/lazyctl (with its Node runtime); an init container copies
// it onto the host and runs the setup inside the host's namespaces (nsenter into PID 1), so
// systemd, the host's package manager and containerd's real config are the ones changed.
import {CLIENT_VERSION} from '../version.js'
import {shellQuote} from './transport.js'

export interface DaemonSetOptions {
  image: string
  namespace: string
  name: string
  /** Extra arguments for `lazyctl node setup --local` (e.g. --snapshotter-root). */
  setupArgs: string[]
  nodeSelector: Record<string, string>
  installDir: string
}

export function defaultDaemonSetOptions(): DaemonSetOptions {
  return {image: `ghcr.io/lazyctl/lazyctl:${CLIENT_VERSION}`, namespace: 'kube-system', name: 'lazyctl-node-setup', setupArgs: [], nodeSelector: {}, installDir: '/opt/lazyctl'}
}

type Json = string | number | boolean | null | Json[] | {[key: string]: Json}

export function daemonSet(o: DaemonSetOptions): {[key: string]: Json} {
  const labels = {'app.kubernetes.io/name': o.name, 'app.kubernetes.io/part-of': 'lazyctl'}
  // Every value that reaches a shell is quoted (an install dir or a setup argument with a space or a `;`).
  const hostInstall = shellQuote(`/host${o.installDir}`)
  const staged = (suffix: string): string => shellQuote(`/host${o.installDir}${suffix}`)
  const nsenter = 'nsenter --target 1 --mount --uts --ipc --net --pid --'
  const lazyctl = shellQuote(`${o.installDir}/bin/lazyctl`)
  const setup = [lazyctl, ...['node', 'setup', '--local', '--skip', 'install', ...o.setupArgs].map(shellQuote)].join(' ')
  // verify checks the socket setup was given, if it was given one.
  const socketAt = o.setupArgs.indexOf('--snapshotter-socket')
  const verifyArgs = socketAt >= 0 && o.setupArgs[socketAt + 1] ? ['--snapshotter-socket', o.setupArgs[socketAt + 1]!] : []
  const verify = [lazyctl, ...['node', 'verify', ...verifyArgs].map(shellQuote)].join(' ')
  const securityContext = {privileged: true}
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: {name: o.name, namespace: o.namespace, labels},
    spec: {
      selector: {matchLabels: labels},
      updateStrategy: {type: 'RollingUpdate', rollingUpdate: {maxUnavailable: '10%'}},
      template: {
        metadata: {labels},
        spec: {
          hostPID: true,
          priorityClassName: 'system-node-critical',
          tolerations: [{operator: 'Exists'}],
          ...(Object.keys(o.nodeSelector).length ? {nodeSelector: o.nodeSelector} : {}),
          initContainers: [
            {
              name: 'setup',
              image: o.image,
              securityContext,
              command: ['/bin/sh', '-c'],
              args: [
                [
                  'set -e',
                  // Copy the program onto the host (staged, then swapped), then run setup as a host process.
                  `rm -rf ${staged('.new')} && mkdir -p ${staged('.new')} && cp -a ${shellQuote(`${o.installDir}/.`)} ${staged('.new/')}`,
                  `rm -rf ${staged('.old')} && if [ -d ${hostInstall} ]; then mv ${hostInstall} ${staged('.old')}; fi && mv ${staged('.new')} ${hostInstall} && rm -rf ${staged('.old')}`,
                  `${nsenter} ${setup}`,
                ].join('\n'),
              ],
              volumeMounts: [{name: 'host-root', mountPath: '/host', mountPropagation: 'HostToContainer'}],
            },
          ],
          containers: [
            {
              name: 'verify',
              image: o.image,
              securityContext,
              // Stays up so the DaemonSet shows each node's state: `node verify` is its readiness, so a
              // node whose snapshotter or containerd fails shows as not ready (kubectl get ds, rollout status).
              command: ['/bin/sh', '-c'],
              args: ['trap "exit 0" TERM; while :; do sleep 3600 & wait $!; done'],
              readinessProbe: {exec: {command: ['/bin/sh', '-c', `${nsenter} ${verify}`]}, initialDelaySeconds: 5, periodSeconds: 60, timeoutSeconds: 30, failureThreshold: 1},
              resources: {requests: {cpu: '5m', memory: '32Mi'}, limits: {memory: '256Mi'}},
            },
          ],
          volumes: [{name: 'host-root', hostPath: {path: '/', type: 'Directory'}}],
        },
      },
    },
  }
}


/** YAML for plain data: block maps and lists, strings always double-quoted (JSON strings are YAML). */
export function toYaml(value: Json, indent = ''): string {
  if (Array.isArray(value)) {
    if (!value.length) return ' []\n'
    return '\n' + value.map((v) => `${indent}-${scalarOrBlock(v, indent + '  ', true)}`).join('')
  }
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value)
    if (!keys.length) return ' {}\n'
    return '\n' + keys.map((k) => `${indent}${k}:${scalarOrBlock(value[k]!, indent + '  ', false)}`).join('')
  }
  return ` ${JSON.stringify(value)}\n`
}

function scalarOrBlock(v: Json, indent: string, inList: boolean): string {
  if (v !== null && typeof v === 'object' && !Array.isArray(v) && inList) {
    // `- key: value` with the rest of the map aligned under the first key.
    const block = toYaml(v, indent)
    return ' ' + block.slice(1 + indent.length)
  }
  return toYaml(v, indent)
}

export function daemonSetYaml(o: DaemonSetOptions): string {
  return `# lazyctl ${CLIENT_VERSION}: runs "lazyctl node setup --local" on every node (kubectl apply -f -)\n---` + toYaml(daemonSet(o)).replace(/^\n/, '\n')
}
