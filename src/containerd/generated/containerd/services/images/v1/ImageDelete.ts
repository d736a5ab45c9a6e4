// Original file: containerd/services/images/v1/images.proto


export interface ImageDelete {
  'name'?: (string);
}

export interface ImageDelete__Output {
  'name': (string);
}
