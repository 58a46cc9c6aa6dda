// Signature-only stub for compile checks (tests/test_sdk_compile.py), never packaged: the public signature as
// documented in the Android API reference (API level 35), bodies throw.
package org.json;
public class JSONException extends RuntimeException {
  public JSONException(String s) { super(s); }
}
