"""Goldens for the self-supervised losses: DINO's loss with centre update (as DINOLoss in
facebookresearch/dino main_dino.py computes it) and NT-Xent written the common way (similarity matrix
without the diagonal, positives as class 0), on fixed random inputs."""
import torch
import torch.nn.functional as F

from common import case_dir, save_safetensors


def dino_loss(student_output, teacher_output, center, ncrops, student_temp, teacher_temp, center_momentum):
    student_out = (student_output / student_temp).chunk(ncrops)
    teacher_out = F.softmax((teacher_output - center) / teacher_temp, dim=-1).detach().chunk(2)
    total, n = 0, 0
    for iq, q in enumerate(teacher_out):
        for v in range(len(student_out)):
            if v == iq:
                continue
            total += torch.sum(-q * F.log_softmax(student_out[v], dim=-1), dim=-1).mean()
            n += 1
    batch_center = torch.sum(teacher_output, dim=0, keepdim=True) / len(teacher_output)
    return total / n, center * center_momentum + batch_center * (1 - center_momentum)


def nt_xent(a, b, temperature):
    z = F.normalize(torch.cat([a, b]), dim=1)
    n = a.shape[0]
    sim = z @ z.t()
    labels = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    positives = sim[torch.arange(2 * n), labels].unsqueeze(1)
    # each row's negatives: every other view except itself and its positive
    rows = []
    for i in range(2 * n):
        keep = [j for j in range(2 * n) if j != i and j != labels[i]]
        rows.append(sim[i, keep])
    logits = torch.cat([positives, torch.stack(rows)], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(2 * n, dtype=torch.long))


def make(out):
    torch.manual_seed(0)
    d = case_dir(out, "ssl_losses")
    b, k, ncrops = 6, 64, 4
    student = torch.randn(ncrops * b, k) * 3
    teacher = torch.randn(2 * b, k) * 3
    center = torch.randn(1, k) * 0.5
    loss, new_center = dino_loss(student, teacher, center, ncrops, 0.1, 0.04, 0.9)
    a, bb = torch.randn(8, 16), torch.randn(8, 16)
    save_safetensors(f"{d}/io.safetensors", {
        "dino.student": student, "dino.teacher": teacher, "dino.center": center,
        "dino.loss": loss.reshape(1), "dino.new_center": new_center,
        "nt_xent.a": a, "nt_xent.b": bb, "nt_xent.loss_t0.5": nt_xent(a, bb, 0.5).reshape(1),
        "nt_xent.loss_t0.07": nt_xent(a, bb, 0.07).reshape(1)})
