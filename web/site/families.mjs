// Each model family's per-frame calls, as its SignatureCalls and animation mode make
// them in Python (converter/<family>/runtime, animation): the driving keypoints the
// generator takes, and generate's inputs. site.json's `family` picks one; `controls` is
// the id of the page's options that apply to it (the other family's stay hidden).

const flag = (on) => ({data: new Float32Array([on ? 1 : 0]), shape: []});

function fommKp(site, kp, prefix) {
  const inputs = {[prefix]: kp.value};
  if (site.jacobian) inputs[`${prefix}_jacobian`] = kp.jacobian;
  return inputs;
}

const FOMM = {
  controls: 'fomm-options',
  // ?relative=0|1&adapt_scale=0|1 (the boxes start checked).
  setup($, params) {
    for (const [id, name] of [['relative', 'relative'], ['adapt-scale', 'adapt_scale']]) {
      if (params.has(name)) $(id).checked = params.get(name) !== '0';
    }
  },
  async normalise(models, site, $, kp, initial, kpSource) {
    const relative = $('relative').checked;
    return models.run('process_kp_driving', 'serving_default', {
      ...fommKp(site, kp, 'kp_driving'), ...fommKp(site, initial, 'kp_driving_initial'),
      ...fommKp(site, kpSource, 'kp_source'),
      use_relative_movement: flag(relative), use_relative_jacobian: flag(relative),
      adapt_movement_scale: flag($('adapt-scale').checked)});
  },
  encodedInputs: (encoded) => encoded,
  keypoints: (site, norm, kpSource) => ({...fommKp(site, norm, 'kp_driving'),
                                         ...fommKp(site, kpSource, 'kp_source')}),
};

// TPSMM: relative (motion since the initial frame, scaled by the hulls), standard (the
// driving keypoints as they are) or avd (the AVD network's); generate takes the source
// picture beside encode_source's outputs.
const TPSMM = {
  controls: 'tpsmm-options',
  // ?mode=relative|standard|avd, else the spec's (site.json `normalization`).
  setup($, params, site, PageError) {
    const mode = params.get('mode') ?? site.normalization.mode;
    if (![...$('mode').options].some((option) => option.value === mode)) {
      throw new PageError(`mode=${mode}: the modes are relative, standard and avd`);
    }
    $('mode').value = mode;
  },
  async normalise(models, site, $, kp, initial, kpSource) {
    const mode = $('mode').value;
    if (mode === 'avd') {
      return models.run('avd_network', 'serving_default',
                        {kp_source: kpSource.value, kp_driving: kp.value});
    }
    return models.run('process_kp_driving', 'serving_default', {
      kp_driving: kp.value, kp_driving_initial: initial.value, kp_source: kpSource.value,
      use_relative_movement: flag(mode === 'relative')});
  },
  encodedInputs: (encoded, sourceImage) => ({...encoded, source_image: sourceImage}),
  keypoints: (site, norm, kpSource) => ({kp_driving: norm.value, kp_source: kpSource.value}),
};

export const FAMILIES = {fomm: FOMM, tpsmm: TPSMM};
