import Convert from '../convert.js'

/** `lazyctl image convert`: the same command as `lazyctl convert` (nerdctl's spelling). */
export default class ImageConvert extends Convert {
  static override summary = Convert.summary + ' (alias of `convert`)'
}
