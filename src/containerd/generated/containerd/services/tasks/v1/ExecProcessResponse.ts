/* eslint-disable @typescript-eslint/no-empty-object-type -- generated for an empty message */
// Original file: containerd/services/tasks/v1/tasks.proto


export interface ExecProcessResponse {
}

export interface ExecProcessResponse__Output {
}
