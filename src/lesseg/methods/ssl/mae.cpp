// MAE: masked autoencoders (ref: He et al. 2022, facebookresearch/mae models_mae.py).
#include <torch/torch.h>

#include "lesseg/core/config.h"
#include "lesseg/core/error.h"
#include "lesseg/methods/ssl/ssl_task.h"
#include "lesseg/models/mae_decoder.h"
#include "lesseg/models/vit.h"

namespace lesseg {

namespace {

// What a checkpoint holds: the ViT encoder and the MAE decoder.
struct MaeStateImpl : torch::nn::Module {
  MaeStateImpl(std::shared_ptr<VitImpl> e, MaeDecoder d)
      : encoder(register_module("encoder", std::move(e))), decoder(register_module("decoder", d)) {}
  std::shared_ptr<VitImpl> encoder;
  MaeDecoder decoder;
};
TORCH_MODULE(MaeState);

class MaeTask : public SslTask {
 public:
  explicit MaeTask(SslSetup setup) : SslTask(std::move(setup)), state_(make_state()) {
    mask_ratio_ = setup_.config->get<double>("ssl.mask_ratio");
    norm_pix_ = setup_.config->get<bool>("ssl.norm_pix_loss");
    if (mask_ratio_ <= 0 || mask_ratio_ >= 1) throw_usage("ssl.mask_ratio must be in (0, 1)");
  }
  torch::nn::Module& state_module() override { return *state_; }

  LossTerms train_step(int64_t) override {
    state_->train();
    auto images = next_views().front();  // MAE trains on one view per image
    MaskedEncoding encoding = state_->encoder->forward_masked(images, mask_ratio_);
    auto pred = state_->decoder->forward(encoding.latent, encoding.ids_restore, encoding.grid_h, encoding.grid_w);
    return {{"mae", mae_loss(images, pred, encoding.mask, state_->encoder->options.patch_size(), norm_pix_)}};
  }

 private:
  MaeState make_state() {
    auto vit = std::dynamic_pointer_cast<VitImpl>(setup_.backbone);
    if (!vit) throw_usage("MAE pretrains a ViT: set model.backbone to vit_{tiny,small,base}{8,16}, not '" + setup_.spec.backbone + "'");
    const Config& c = *setup_.config;
    MaeDecoderOptions options = mae_decoder_for(vit->options);
    options.embed_dim(c.get<int64_t>("ssl.decoder_dim"))
        .depth(c.get<int64_t>("ssl.decoder_depth"))
        .num_heads(c.get<int64_t>("ssl.decoder_heads"));
    MaeState state(vit, MaeDecoder(options));
    state->to(setup_.device);
    return state;
  }

  MaeState state_;
  double mask_ratio_ = 0.75;
  bool norm_pix_ = true;
};

}  // namespace

std::unique_ptr<SslTask> make_mae_task(SslSetup setup) { return std::make_unique<MaeTask>(std::move(setup)); }

}  // namespace lesseg
