/* eslint-disable @typescript-eslint/no-empty-object-type -- generated for an empty message */
// Original file: null


export interface Empty {
}

export interface Empty__Output {
}
