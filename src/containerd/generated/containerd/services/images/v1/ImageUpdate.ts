// Original file: containerd/services/images/v1/images.proto


export interface ImageUpdate {
  'name'?: (string);
  'labels'?: ({[key: string]: string});
}

export interface ImageUpdate__Output {
  'name': (string);
  'labels': ({[key: string]: string});
}
