// Original file: containerd/services/images/v1/images.proto


export interface DeleteImageRequest {
  'name'?: (string);
  'sync'?: (boolean);
}

export interface DeleteImageRequest__Output {
  'name': (string);
  'sync': (boolean);
}
