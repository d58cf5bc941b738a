"""The head camera's view, rendered from the simulated motion.

Three textured planes (floor, the wall in front, an optional table top) are drawn with one
perspective warp each (the exact homography from texture to image for the head pose, masked by
the plane's polygon clipped at the near plane), then the objects (pan, board, knife, spoon) and
the wearer's own forearms and hands where the simulated wrists project into the camera. So the
scene shifts and turns exactly as the head moves, and the hands are where the wrist IMUs are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

#: colour of the wearer's skin in rendered frames (RGB); nothing else in the scene uses it
SKIN_RGB: tuple[int, int, int] = (236, 186, 150)
SLEEVE_RGB: tuple[int, int, int] = (64, 76, 120)
CEILING_RGB: tuple[int, int, int] = (226, 226, 232)

FLOOR_PERIOD_M, FLOOR_SIZE_M = 2.0, 24.0
WALL_Y0, WALL_H = 20.0, 2.8
TABLE_X, TABLE_Y, TABLE_Z = (0.15, 0.85), (-0.6, 0.6), 0.9
NEAR = 0.05

_PALETTE = np.array(
    [(40, 90, 160), (170, 40, 40), (50, 130, 60), (200, 170, 40), (90, 60, 120), (30, 30, 30),
     (20, 140, 150), (230, 230, 230), (120, 120, 60)],
    dtype=np.uint8,
)  # fmt: skip


@dataclass
class Arm:
    """One forearm to draw: wrist position (3,) and world-from-forearm rotation (3, 3)."""

    wrist: np.ndarray
    R: np.ndarray


def _floor_texture(rng: np.random.Generator, px_per_m: float, size_m: float) -> np.ndarray:
    """A floor of 0.5 m tiles with speckles, periodic every FLOOR_PERIOD_M, ``size_m`` square."""
    px = int(FLOOR_PERIOD_M * px_per_m)
    tile = np.empty((px, px, 3), np.uint8)
    t = px // 4
    for i in range(4):
        for j in range(4):
            shade = 118 + (14 if (i + j) % 2 else -14)
            tile[i * t : (i + 1) * t, j * t : (j + 1) * t] = (shade - 6, shade, shade + 8)
    tile[::t] = (70, 72, 78)
    tile[:, ::t] = (70, 72, 78)
    for _ in range(90):
        c = (int(rng.integers(4, px - 4)), int(rng.integers(4, px - 4)))
        col = _PALETTE[rng.integers(0, len(_PALETTE))] // 2 + 60
        cv2.circle(tile, c, int(rng.integers(1, 4)), tuple(int(x) for x in col), -1)
    reps = round(size_m / FLOOR_PERIOD_M)
    return cv2.GaussianBlur(np.tile(tile, (reps, reps, 1)), (3, 3), 0)


def _wall_texture(rng: np.random.Generator, px_per_m: float) -> np.ndarray:
    """The wall from y = +WALL_Y0 (column 0) to −WALL_Y0, floor (bottom row) to WALL_H."""
    w, h = int(2 * WALL_Y0 * px_per_m), int(WALL_H * px_per_m)
    tex = np.empty((h, w, 3), np.uint8)
    tex[:] = (196, 192, 176)
    noise = rng.integers(-6, 7, size=(h, w, 1))
    tex = np.clip(tex.astype(np.int16) + noise, 0, 255).astype(np.uint8)

    def row(z: float) -> int:
        return int((WALL_H - z) * px_per_m)

    def col(y: float) -> int:
        return int((WALL_Y0 - y) * px_per_m)

    tex[row(0.12) :] = (90, 80, 70)  # skirting board
    for y0 in np.arange(-WALL_Y0, WALL_Y0, 1.6):  # pictures and posters
        y, z = y0 + rng.uniform(0.0, 1.0), rng.uniform(0.9, 1.3)
        wd, ht = rng.uniform(0.2, 0.6), rng.uniform(0.2, 0.45)
        c = tuple(int(x) for x in _PALETTE[rng.integers(0, len(_PALETTE))])
        p0, p1 = (col(y), row(z + ht)), (col(y - wd), row(z))
        cv2.rectangle(tex, p0, p1, (40, 35, 30), -1)
        cv2.rectangle(tex, (p0[0] + 3, p0[1] + 3), (p1[0] - 3, p1[1] - 3), c, -1)
        cv2.line(tex, (p0[0] + 3, p1[1] - 3), (p1[0] - 3, p0[1] + 3), (250, 250, 250), 2)
    cv2.rectangle(tex, (col(1.0), row(1.82)), (col(-1.0), row(1.77)), (110, 75, 45), -1)  # shelf
    y = 0.95
    while y > -0.95:  # boxes and jars on the shelf
        wd = rng.uniform(0.08, 0.22)
        ht = rng.uniform(0.1, 0.25)
        c = tuple(int(x) for x in _PALETTE[rng.integers(0, len(_PALETTE))])
        cv2.rectangle(tex, (col(y), row(1.82 + ht)), (col(y - wd), row(1.82)), c, -1)
        y -= wd + rng.uniform(0.02, 0.08)
    return tex


def _table_texture(rng: np.random.Generator, px_per_m: float) -> np.ndarray:
    w = int((TABLE_Y[1] - TABLE_Y[0]) * px_per_m)
    h = int((TABLE_X[1] - TABLE_X[0]) * px_per_m)
    grain = np.sin(np.arange(h)[:, None] * 0.9 + rng.uniform(0, 6)) * np.ones((1, w))
    base = np.array([139, 94, 60], np.float32)
    tex = base + 14.0 * grain[..., None] + rng.normal(0, 3, (h, w, 1))
    return np.clip(tex, 0, 255).astype(np.uint8)


def _clip_near(q: np.ndarray) -> np.ndarray:
    """Clip a convex polygon (M, 3) in camera coordinates (z forward) to z >= NEAR."""
    out = []
    for a, b in zip(q, np.roll(q, -1, axis=0), strict=True):
        if a[2] >= NEAR:
            out.append(a)
        if (a[2] >= NEAR) != (b[2] >= NEAR):
            s = (NEAR - a[2]) / (b[2] - a[2])
            out.append(a + s * (b - a))
    return np.array(out).reshape(-1, 3)


#: head frame (x forward, y left, z up) to OpenCV camera frame (x right, y down, z forward)
_HEAD_TO_CV = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])


class HeadCamera:
    """Renders ``width`` × ``height`` RGB views of the synthetic room for a head pose."""

    def __init__(self, width: int, height: int, hfov_deg: float, seed: int) -> None:
        self.width, self.height = int(width), int(height)
        self.f = (self.width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
        self.cx, self.cy = (self.width - 1) / 2.0, (self.height - 1) / 2.0
        rng = np.random.default_rng([int(seed), 0x5CE7E])
        self._floor_px = 48.0
        self._floor = _floor_texture(rng, self._floor_px, FLOOR_SIZE_M)
        self._wall_px = 64.0
        self._wall = _wall_texture(rng, self._wall_px)
        self._table_px = 160.0
        self._table = _table_texture(rng, self._table_px)
        self._items = rng.uniform(-0.02, 0.02, size=(6, 2))  # food offsets on the board / pan

    # -- projection ----------------------------------------------------------------------------
    def project(
        self, points: np.ndarray, cam: np.ndarray, R: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (M, 2) and depth (M,) of world points (M, 3) for a head pose."""
        q = (np.asarray(points, np.float64) - cam) @ R  # head frame: x forward, y left, z up
        z = q[:, 0]
        zs = np.where(np.abs(z) < 1e-9, 1e-9, z)
        uv = np.stack([self.cx - self.f * q[:, 1] / zs, self.cy - self.f * q[:, 2] / zs], -1)
        return uv, z

    # -- surfaces ------------------------------------------------------------------------------
    def _plane(self, img, cam, M, tex, origin, e_c, e_r, corners) -> None:
        """Paint the part of a textured plane inside ``corners`` (world, convex) onto ``img``.

        Texture pixel (c, r) lies at ``origin + c e_c + r e_r``; the plane maps to the image by
        the homography ``K M [e_c | e_r | origin − cam]``, valid where the polygon is in front.
        """
        q = _clip_near((np.asarray(corners, np.float64) - cam) @ M.T)
        if len(q) < 3:
            return
        uv = self.f * q[:, :2] / q[:, 2:] + (self.cx, self.cy)
        uv = np.clip(uv, -1e5, 1e5)
        x0, y0 = np.maximum(np.floor(uv.min(0)).astype(int), 0)
        x1, y1 = np.minimum(np.ceil(uv.max(0)).astype(int) + 1, (self.width, self.height))
        if x1 <= x0 or y1 <= y0:
            return
        K = np.array([[self.f, 0.0, self.cx - x0], [0.0, self.f, self.cy - y0], [0.0, 0.0, 1.0]])
        H = K @ M @ np.column_stack([e_c, e_r, np.asarray(origin, np.float64) - cam])
        roi = img[y0:y1, x0:x1]
        warped = cv2.warpPerspective(
            tex, H, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        mask = np.zeros(roi.shape[:2], np.uint8)
        pts = np.round((uv - (x0, y0)) * 16).astype(np.int32)
        cv2.fillPoly(mask, [pts], 255, cv2.LINE_8, shift=4)
        cv2.copyTo(warped, mask, roi)  # in place into the view of img

    def _surfaces(
        self, cam: np.ndarray, R: np.ndarray, wall_x: float, odometer: float, table: bool
    ) -> np.ndarray:
        img = np.full((self.height, self.width, 3), CEILING_RGB, np.uint8)
        M = _HEAD_TO_CV @ R.T  # camera-from-world rotation
        inv = 1.0 / self._wall_px
        y_max = WALL_Y0 - 0.01
        self._plane(
            img, cam, M, self._wall, (wall_x, WALL_Y0, WALL_H), (0, -inv, 0), (0, 0, -inv),
            [(wall_x, y_max, 0), (wall_x, -y_max, 0), (wall_x, -y_max, WALL_H),
             (wall_x, y_max, WALL_H)],
        )  # fmt: skip
        half = FLOOR_SIZE_M / 2 - 0.01
        ox = -odometer + FLOOR_PERIOD_M * round((cam[0] + odometer - half) / FLOOR_PERIOD_M)
        oy = FLOOR_PERIOD_M * round((cam[1] - half) / FLOOR_PERIOD_M)
        inv = 1.0 / self._floor_px
        x_lo, x_hi = max(ox, cam[0] - half), min(wall_x, ox + 2 * half)
        y_lo, y_hi = oy, oy + 2 * half
        self._plane(
            img, cam, M, self._floor, (ox, oy, 0.0), (inv, 0, 0), (0, inv, 0),
            [(x_lo, y_lo, 0), (x_hi, y_lo, 0), (x_hi, y_hi, 0), (x_lo, y_hi, 0)],
        )  # fmt: skip
        if table and cam[2] > TABLE_Z:
            inv = 1.0 / self._table_px
            (xa, xb), (ya, yb), z = TABLE_X, TABLE_Y, TABLE_Z
            self._plane(
                img, cam, M, self._table, (xa, yb, z), (0, -inv, 0), (inv, 0, 0),
                [(xa, yb, z), (xa, ya, z), (xb, ya, z), (xb, yb, z)],
            )  # fmt: skip
        return img

    # -- objects -------------------------------------------------------------------------------
    def _poly(self, img, pts3, cam, R, color) -> None:
        uv, z = self.project(pts3, cam, R)
        if (z > NEAR).all() and np.abs(uv).max() < 1e5:
            cv2.fillPoly(img, [np.round(uv).astype(np.int32)], color, cv2.LINE_AA)

    def _segment(self, img, a, b, cam, R, color, width_m) -> None:
        """A thick 3-D segment from a to b, clipped at the near plane."""
        qa, qb = (np.asarray(a) - cam) @ R, (np.asarray(b) - cam) @ R
        if qa[0] < NEAR and qb[0] < NEAR:
            return
        if qa[0] < NEAR or qb[0] < NEAR:
            s = (NEAR - qa[0]) / (qb[0] - qa[0])
            cut = qa + s * (qb - qa)
            qa, qb = (cut, qb) if qa[0] < NEAR else (qa, cut)
        pts = np.stack([qa, qb]) @ R.T + cam
        uv, z = self.project(pts, cam, R)
        th = int(np.clip(self.f * width_m / max(float(z.mean()), NEAR), 1, 200))
        p0, p1 = (tuple(int(x) for x in np.clip(np.round(p), -1e5, 1e5)) for p in uv)
        cv2.line(img, p0, p1, color, th, cv2.LINE_AA)

    def _disc(self, img, center, radius_m, cam, R, color) -> None:
        uv, z = self.project(np.asarray(center)[None], cam, R)
        if z[0] > NEAR and np.abs(uv).max() < 1e5:
            r = int(np.clip(self.f * radius_m / z[0], 1, 400))
            cv2.circle(img, tuple(int(x) for x in np.round(uv[0])), r, color, -1, cv2.LINE_AA)

    def _table_props(self, img, props, cam, R) -> None:
        ring = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        if "pan" in props:
            c = np.array([0.42, -0.12, TABLE_Z + 0.005])
            for r, color in ((0.13, (45, 45, 50)), (0.11, (85, 85, 92))):
                pts = c + np.stack([r * np.cos(ring), r * np.sin(ring), 0 * ring], -1)
                self._poly(img, pts, cam, R, color)
            for dx, dy in self._items:
                self._disc(img, c + np.array([dx * 4, dy * 4, 0.01]), 0.018, cam, R, (220, 120, 30))
            self._segment(
                img, c + np.array([0.0, 0.13, 0.01]), (0.38, 0.3, 0.93), cam, R, (30, 30, 30), 0.02
            )
        if "board" in props:
            x0, x1, y0, y1, z = 0.28, 0.52, -0.3, 0.15, TABLE_Z + 0.005
            pts = np.array([(x0, y0, z), (x1, y0, z), (x1, y1, z), (x0, y1, z)])
            self._poly(img, pts, cam, R, (196, 150, 84))
            for i, (dx, dy) in enumerate(self._items):
                p = (0.4 + dx * 3, 0.02 - 0.03 * i + dy, z + 0.01)
                self._disc(img, p, 0.015, cam, R, (60, 160, 50))

    def _arm(self, img, arm: Arm, props, cam, R, right: bool) -> None:
        axis = arm.R[:, 0]  # along the forearm, towards the hand
        hand = arm.wrist + 0.07 * axis
        self._segment(img, arm.wrist - 0.26 * axis, arm.wrist, cam, R, SLEEVE_RGB, 0.075)
        if right and "knife" in props:
            self._segment(img, hand, hand + 0.1 * axis, cam, R, (25, 25, 25), 0.02)
            self._segment(img, hand + 0.1 * axis, hand + 0.26 * axis, cam, R, (200, 204, 214), 0.03)
        if right and "spoon" in props:
            self._segment(
                img, hand, hand + np.array([0.03, 0.0, -0.14]), cam, R, (120, 80, 40), 0.015
            )
        self._disc(img, hand, 0.045, cam, R, SKIN_RGB)

    def render(
        self,
        cam: np.ndarray,
        R: np.ndarray,
        *,
        wall_x: float,
        odometer: float,
        props: frozenset[str],
        arms: dict[str, Arm],
    ) -> np.ndarray:
        """One (H, W, 3) uint8 RGB frame for camera position ``cam`` and world-from-head ``R``."""
        cam = np.asarray(cam, np.float64)
        img = self._surfaces(cam, R, wall_x, odometer, "table" in props)
        if "table" in props:
            self._table_props(img, props, cam, R)
        order = sorted(arms, key=lambda k: -float((arms[k].wrist - cam) @ R[:, 0]))
        for name in order:
            self._arm(img, arms[name], props, cam, R, right=name == "right_arm")
        return img
