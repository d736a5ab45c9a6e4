// Original file: containerd/services/diff/v1/diff.proto

import type { Mount as _containerd_types_Mount, Mount__Output as _containerd_types_Mount__Output } from '../../../../containerd/types/Mount.js';
import type { Timestamp as _google_protobuf_Timestamp, Timestamp__Output as _google_protobuf_Timestamp__Output } from '../../../../google/protobuf/Timestamp.js';

export interface DiffRequest {
  'left'?: (_containerd_types_Mount)[];
  'right'?: (_containerd_types_Mount)[];
  'media_type'?: (string);
  'ref'?: (string);
  'labels'?: ({[key: string]: string});
  'source_date_epoch'?: (_google_protobuf_Timestamp | null);
}

export interface DiffRequest__Output {
  'left': (_containerd_types_Mount__Output)[];
  'right': (_containerd_types_Mount__Output)[];
  'media_type': (string);
  'ref': (string);
  'labels': ({[key: string]: string});
  'source_date_epoch': (_google_protobuf_Timestamp__Output | null);
}
