// evimae-stream companion sketch: an MPU6050 (GY-521 board) on I2C, streamed over USB serial.
//
// Prints one line per sample at 100 Hz, 115200 baud, in the "csv" protocol of evimae-stream:
//   ax,ay,az,gx,gy,gz,t_ms\r\n
// ax..az in g (4 decimals, +-8 g range), gx..gz in deg/s (2 decimals, +-500 deg/s range),
// t_ms = millis() when the sample was read (the host fits its clock to it).
// Host side: evimae-stream --imu-ports 'left_arm=serial:/dev/ttyUSB0?baud=115200&protocol=csv'
//
// Wiring (Uno/Nano): VCC->5V (GY-521 has a regulator), GND->GND, SDA->A4, SCL->A5, AD0->GND.

#include <Wire.h>

const uint8_t MPU_ADDR = 0x68;          // AD0 low
const unsigned long PERIOD_US = 10000;  // 100 Hz
const float ACC_LSB_PER_G = 4096.0;     // ACCEL_CONFIG AFS_SEL=2: +-8 g
const float GYRO_LSB_PER_DPS = 65.5;    // GYRO_CONFIG FS_SEL=1: +-500 deg/s

unsigned long nextSample;

void writeReg(uint8_t reg, uint8_t value) {
  Wire.beginTransmission(MPU_ADDR);
  Wire.write(reg);
  Wire.write(value);
  Wire.endTransmission();
}

void setup() {
  Serial.begin(115200);
  Wire.begin();
  Wire.setClock(400000);
  writeReg(0x6B, 0x01);  // PWR_MGMT_1: wake up, clock from the X gyro PLL
  writeReg(0x1A, 0x03);  // CONFIG: digital low-pass 44 Hz (below Nyquist of 100 Hz)
  writeReg(0x19, 0x09);  // SMPLRT_DIV: 1 kHz / (1 + 9) = 100 Hz
  writeReg(0x1C, 0x10);  // ACCEL_CONFIG: +-8 g
  writeReg(0x1B, 0x08);  // GYRO_CONFIG: +-500 deg/s
  delay(100);
  Serial.println(F("# evimae csv v1 mpu6050 100Hz 8g 500dps: ax,ay,az,gx,gy,gz,t_ms"));
  nextSample = micros();
}

int16_t read16() {
  int16_t hi = Wire.read();
  return (hi << 8) | Wire.read();  // big-endian registers
}

void loop() {
  if ((long)(micros() - nextSample) < 0) return;
  nextSample += PERIOD_US;

  unsigned long t = millis();
  Wire.beginTransmission(MPU_ADDR);
  Wire.write(0x3B);  // ACCEL_XOUT_H: ax, ay, az, temperature, gx, gy, gz
  if (Wire.endTransmission(false) != 0) {
    Serial.println(F("# i2c error"));
    return;
  }
  Wire.requestFrom(MPU_ADDR, (uint8_t)14);
  if (Wire.available() < 14) return;
  int16_t ax = read16(), ay = read16(), az = read16();
  read16();  // temperature
  int16_t gx = read16(), gy = read16(), gz = read16();

  Serial.print(ax / ACC_LSB_PER_G, 4);
  Serial.print(',');
  Serial.print(ay / ACC_LSB_PER_G, 4);
  Serial.print(',');
  Serial.print(az / ACC_LSB_PER_G, 4);
  Serial.print(',');
  Serial.print(gx / GYRO_LSB_PER_DPS, 2);
  Serial.print(',');
  Serial.print(gy / GYRO_LSB_PER_DPS, 2);
  Serial.print(',');
  Serial.print(gz / GYRO_LSB_PER_DPS, 2);
  Serial.print(',');
  Serial.println(t);
}
