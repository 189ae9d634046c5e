"""Reference loops to measure the engine against: replicas of d2l's train_ch6 and the classic recipe's loop.

d2l's loop feeds a torchvision DataLoader (4 workers, ToTensor per sample on PIL images), moves
each batch to the device, and reads loss and accuracy back to the host with float() every step.
The classic PyTorch LeNet-5 recipe's loop does the same with the DataLoader's defaults (no
workers), a Resize(32) and Normalize per sample, batch 128, Adam, and a test pass each epoch.
"""
from __future__ import annotations

import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

D2L_WORKERS = 4  # d2l.get_dataloader_workers()


class PilImages(Dataset):
    """uint8 images served one PIL image at a time, as torchvision's MNIST.__getitem__ does."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.images[i].numpy(), mode="L")), int(self.labels[i])


def per_sample_transform(input_size: int, fit_to_input: str = "pad", normalize: str = "none",
                         mean: float = 0.0, std: float = 1.0, side: int = 28):
    """The torchvision transform pipeline a per-sample loader would run for this geometry."""
    steps = []
    if input_size != side:
        pad = (input_size - side) // 2
        steps.append(transforms.Resize(input_size) if fit_to_input == "resize" else transforms.Pad(pad))
    steps.append(transforms.ToTensor())
    if normalize == "mean_std":
        steps.append(transforms.Normalize((mean,), (std,)))
    return transforms.Compose(steps)


def loader(dataset: Dataset, batch_size: int, shuffle: bool = True, workers: int = D2L_WORKERS) -> DataLoader:
    """d2l.load_data_fashion_mnist's DataLoader: its workers start afresh for every pass, as there."""
    return DataLoader(dataset, batch_size, shuffle=shuffle, num_workers=workers)


def classic_loader(dataset: Dataset, batch_size: int, shuffle: bool = True) -> DataLoader:
    """The classic recipe's DataLoader: the defaults, so every sample is transformed in the training process."""
    return DataLoader(dataset, batch_size, shuffle=shuffle)


def accuracy(y_hat: torch.Tensor, y: torch.Tensor) -> float:
    """d2l.accuracy: the number of correct predictions, as a Python float (a host sync)."""
    return float((y_hat.argmax(axis=1).type(y.dtype) == y).sum())


def evaluate_accuracy_gpu(net: nn.Module, data_iter, device) -> float:
    net.eval()
    correct = total = 0.0
    with torch.no_grad():
        for X, y in data_iter:
            X, y = X.to(device), y.to(device)
            correct += accuracy(net(X), y)
            total += y.numel()
    return correct / total


def _xavier(m: nn.Module) -> None:
    if type(m) in (nn.Linear, nn.Conv2d):
        nn.init.xavier_uniform_(m.weight)


def train_ch6(net, train_iter, test_iter, num_epochs, optimizer, device, init_weights: bool = True) -> list[dict]:
    """d2l's train_ch6, with the optimizer passed in; init_weights=False keeps the given weights."""
    if init_weights:
        net.apply(_xavier)
    net.to(device)
    loss = nn.CrossEntropyLoss()
    history = []
    for epoch in range(num_epochs):
        metric = [0.0, 0.0, 0.0]  # d2l.Accumulator(3): loss sum, correct, samples
        net.train()
        for X, y in train_iter:
            optimizer.zero_grad()
            X, y = X.to(device), y.to(device)
            y_hat = net(X)
            l = loss(y_hat, y)  # noqa: E741 (d2l's name)
            l.backward()
            optimizer.step()
            with torch.no_grad():
                for i, value in enumerate((float(l * X.shape[0]), accuracy(y_hat, y), X.shape[0])):
                    metric[i] += value
        test_acc = evaluate_accuracy_gpu(net, test_iter, device)
        history.append(dict(epoch=epoch + 1, train_loss=metric[0] / metric[2], train_acc=metric[1] / metric[2],
                            test_acc=test_acc))
    return history


def train_classic(net, train_loader, test_loader, num_epochs, optimizer, device) -> list[dict]:
    """The classic recipe's loop: loss.item() and a correct count per step, then a test pass per epoch."""
    net.to(device)
    criterion = nn.CrossEntropyLoss()
    history = []
    for epoch in range(num_epochs):
        net.train()
        running_loss = correct = seen = 0.0
        for X, y in train_loader:
            X, y = X.to(device), y.to(device)
            optimizer.zero_grad()
            y_hat = net(X)
            loss = criterion(y_hat, y)
            loss.backward()
            optimizer.step()
            running_loss += loss.item() * X.size(0)
            correct += accuracy(y_hat, y)
            seen += X.size(0)
        net.eval()
        test_loss = test_correct = test_seen = 0.0
        with torch.no_grad():
            for X, y in test_loader:
                X, y = X.to(device), y.to(device)
                y_hat = net(X)
                test_loss += criterion(y_hat, y).item() * X.size(0)
                test_correct += accuracy(y_hat, y)
                test_seen += X.size(0)
        history.append(dict(epoch=epoch + 1, train_loss=running_loss / seen, train_acc=correct / seen,
                            test_loss=test_loss / test_seen, test_acc=test_correct / test_seen))
    return history
