// evimae-stream companion app for Bangle.js 1 and 2.
// Streams the accelerometer at 50 Hz, +-8 g (the WEAR recording settings) over the Nordic UART
// service as text lines "t_ms,ax,ay,az\n": t_ms = integer milliseconds since the app started,
// ax/ay/az in g with 3 decimals. Several lines are sent per write; Espruino splits each write
// into BLE notifications (20 bytes at the default MTU, more when the host negotiates a larger
// one), so a line may span notifications - the host parser (drivers/protocols/text_lines.py,
// protocol "nus") reassembles them. Lines starting with "#" are status messages.
// Host side: evimae-stream --imu-ports 'left_arm=ble:ADDRESS?protocol=nus'

var RATE_HZ = 50;
var BATCH = 5; // samples per write: 10 writes/s keeps the radio busy but not saturated
// KX023/KX022 CNTL1 (0x18): PC1 | RES | DRDYE | GSEL=10 (+-8 g). The firmware converts raw
// counts to g for its default +-4 g range, so with +-8 g every reading must be doubled.
var CNTL1_STANDBY = 0x34; // 0b00110100
var CNTL1_ACTIVE = 0xB4; // 0b10110100
var RANGE_FACTOR = 2;

var t0 = getTime();
var buf = "";
var n = 0;
var sent = 0;
var checkSum = 0;
var checkCount = 0;

function connected() {
  return NRF.getSecurityStatus().connected;
}

function setRange8g() {
  Bangle.accelWr(0x18, CNTL1_STANDBY); // the range may only change in standby
  Bangle.accelWr(0x18, CNTL1_ACTIVE);
}

function onAccel(a) {
  var x = a.x * RANGE_FACTOR, y = a.y * RANGE_FACTOR, z = a.z * RANGE_FACTOR;
  var t = Math.round((getTime() - t0) * 1000);
  buf += t + "," + x.toFixed(3) + "," + y.toFixed(3) + "," + z.toFixed(3) + "\n";
  n++;
  if (checkCount < RATE_HZ) { // self-check over the first second: |a| should be ~1 g at rest
    checkSum += Math.sqrt(x * x + y * y + z * z);
    if (++checkCount == RATE_HZ && connected())
      Bluetooth.write("# evimae nus v1 " + RATE_HZ + "Hz 8g |a|=" + (checkSum / RATE_HZ).toFixed(2) + "\n");
  }
  if (n >= BATCH) {
    if (connected()) {
      Bluetooth.write(buf);
      sent += n;
    }
    buf = "";
    n = 0;
  }
}

function draw() {
  g.reset().clearRect(0, 24, g.getWidth() - 1, g.getHeight() - 1);
  g.setFont("6x8", 2).setFontAlign(0, 0);
  var cx = g.getWidth() / 2;
  g.drawString("evimae", cx, 50);
  g.drawString(connected() ? "streaming" : "waiting", cx, 80);
  g.drawString(sent + " samples", cx, 110);
}

Bangle.setOptions({ powerSave: false }); // keep 50 Hz even when the wrist is still
Bangle.setPollInterval(1000 / RATE_HZ);
setRange8g();
Bangle.on("accel", onAccel);
NRF.on("connect", function () { setTimeout(setRange8g, 100); });
Bangle.loadWidgets();
Bangle.drawWidgets();
setInterval(draw, 1000);
draw();
setWatch(function () { load(); }, BTN1, { repeat: false }); // a button press quits the app
