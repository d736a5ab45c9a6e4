// lazyctl's gRPC client (src/containerd/grpc-transport.ts) against a real gRPC server on a unix
// socket: grpc-js's server, the implementation the snapshotter serves with (containerd's own
// grpc-go server is what every containerd test exercises). Messages are raw bytes here.
import {after, before, test} from 'node:test'
import assert from 'node:assert/strict'
import {execFile} from 'node:child_process'
import {promisify} from 'node:util'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import * as grpc from '@grpc/grpc-js'
import {GrpcCallError, GrpcStatus, GrpcUnixTransport} from '../../src/containerd/grpc-transport.js'

const raw = {serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b}
const method = (path: string, responseStream: boolean): grpc.MethodDefinition<Buffer, Buffer> => ({
  path,
  requestStream: false,
  responseStream,
  requestSerialize: raw.serialize,
  requestDeserialize: raw.deserialize,
  responseSerialize: raw.serialize,
  responseDeserialize: raw.deserialize,
})

let dir: string
let socket: string
let server: grpc.Server
let lastMetadata: grpc.Metadata | undefined

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lazyctl-grpc-'))
  socket = join(dir, 'grpc.sock')
  server = new grpc.Server()
  server.addService(
    {
      Echo: method('/test.Test/Echo', false),
      Fail: method('/test.Test/Fail', false),
      Hang: method('/test.Test/Hang', false),
      Count: method('/test.Test/Count', true),
    },
    {
      Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        lastMetadata = call.metadata
        callback(null, Buffer.concat([call.request, call.request]))
      },
      Fail: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => callback({code: grpc.status.NOT_FOUND, details: 'image "a b" not found: 100% gone'}),
      Hang: () => undefined, // never answers
      Count: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
        const n = call.request.readUInt32BE(0)
        for (let i = 0; i < n; i++) {
          const message = Buffer.alloc(64 << 10, i % 251)
          message.writeUInt32BE(i, 0)
          call.write(message)
        }
        call.end()
      },
    },
  )
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())))
})

after(() => {
  server?.forceShutdown()
  rmSync(dir, {recursive: true, force: true})
})

test('a unary call sends its headers and gets a message larger than one HTTP/2 frame back', async () => {
  const transport = new GrpcUnixTransport(socket)
  try {
    const request = Buffer.alloc(3 << 20, 7) // 6 MiB back: many DATA frames, across flow-control windows
    request.write('head')
    const response = await transport.unary('/test.Test/Echo', request, {'containerd-namespace': 'k8s.io'})
    assert.equal(response.length, request.length * 2)
    assert.ok(response.subarray(0, request.length).equals(request) && response.subarray(request.length).equals(request))
    assert.deepEqual(lastMetadata?.get('containerd-namespace'), ['k8s.io'])
  } finally {
    transport.close()
  }
})

test('a failed call carries its status code and the decoded message', async () => {
  const transport = new GrpcUnixTransport(socket)
  try {
    const err = await transport.unary('/test.Test/Fail', Buffer.alloc(0), {}).then(() => undefined, (e: unknown) => e)
    assert.ok(err instanceof GrpcCallError)
    assert.equal(err.code, GrpcStatus.NOT_FOUND)
    assert.equal(err.details, 'image "a b" not found: 100% gone')
    const unknown = await transport.unary('/test.Test/Nothing', Buffer.alloc(0), {}).then(() => undefined, (e: unknown) => e)
    assert.equal((unknown as GrpcCallError).code, GrpcStatus.UNIMPLEMENTED)
  } finally {
    transport.close()
  }
})

test('a deadline ends a call the server never answers', async () => {
  const transport = new GrpcUnixTransport(socket)
  try {
    const started = performance.now()
    const err = await transport.unary('/test.Test/Hang', Buffer.alloc(0), {}, 200).then(() => undefined, (e: unknown) => e)
    assert.equal((err as GrpcCallError).code, GrpcStatus.DEADLINE_EXCEEDED)
    assert.ok(performance.now() - started < 5000, 'it did not wait for anything but the deadline')
  } finally {
    transport.close()
  }
})

test('a server stream delivers every message in order to a slow reader', async () => {
  const transport = new GrpcUnixTransport(socket)
  try {
    const count = Buffer.alloc(4)
    count.writeUInt32BE(200)
    const call = transport.start('/test.Test/Count', {})
    call.write(count)
    call.end()
    let seen = 0
    for await (const message of call.messages()) {
      assert.equal(message.length, 64 << 10)
      assert.equal(message.readUInt32BE(0), seen)
      if (seen % 50 === 0) await new Promise((resolve) => setImmediate(resolve))
      seen++
    }
    assert.equal(seen, 200)
  } finally {
    transport.close()
  }
})

test('no server on the socket is UNAVAILABLE, naming the failure', async () => {
  const transport = new GrpcUnixTransport(join(dir, 'nobody.sock'))
  try {
    const err = await transport.unary('/test.Test/Echo', Buffer.alloc(1), {}).then(() => undefined, (e: unknown) => e)
    assert.equal((err as GrpcCallError).code, GrpcStatus.UNAVAILABLE)
    assert.match((err as GrpcCallError).details, /ENOENT/)
  } finally {
    transport.close()
  }
})

test('an idle connection does not keep the process alive', async () => {
  // A process that calls and never closes its transport still exits once the call is done.
  const script = `
    const {GrpcUnixTransport} = await import(${JSON.stringify(new URL('../../src/containerd/grpc-transport.js', import.meta.url).href)})
    const t = new GrpcUnixTransport(${JSON.stringify(socket)})
    const r = await t.unary('/test.Test/Echo', Buffer.from('ab'), {})
    console.log(r.toString())`
  // Asynchronously: the server lives in this process and must keep answering meanwhile.
  const run = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {encoding: 'utf8', timeout: 20_000})
  assert.equal(run.stdout.trim(), 'abab', 'the process printed the answer and exited on its own (execFile kills it after 20 s and rejects)')
})
