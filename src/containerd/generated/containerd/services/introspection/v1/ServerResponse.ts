// Original file: containerd/services/introspection/v1/introspection.proto

import type { Long } from '@grpc/proto-loader';

export interface ServerResponse {
  'uuid'?: (string);
  'pid'?: (number | string | Long);
  'pidns'?: (number | string | Long);
}

export interface ServerResponse__Output {
  'uuid': (string);
  'pid': (string);
  'pidns': (string);
}
