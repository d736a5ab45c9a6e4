// Original file: containerd/types/platform.proto


export interface Platform {
  'os'?: (string);
  'architecture'?: (string);
  'variant'?: (string);
  'os_version'?: (string);
  'os_features'?: (string)[];
}

export interface Platform__Output {
  'os': (string);
  'architecture': (string);
  'variant': (string);
  'os_version': (string);
  'os_features': (string)[];
}
