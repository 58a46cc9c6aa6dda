// Signature-only stub for compile checks (tests/test_sdk_compile.py), never packaged: the public signature as
// documented in the Android API reference (API level 35), bodies throw.
package org.json;
public class JSONArray {
  public JSONArray(String json) throws JSONException { throw new UnsupportedOperationException(); }
  public int length() { throw new UnsupportedOperationException(); }
  public Object get(int index) throws JSONException { throw new UnsupportedOperationException(); }
  public String getString(int index) throws JSONException { throw new UnsupportedOperationException(); }
  public long getLong(int index) throws JSONException { throw new UnsupportedOperationException(); }
  public int getInt(int index) throws JSONException { throw new UnsupportedOperationException(); }
  public double getDouble(int index) throws JSONException { throw new UnsupportedOperationException(); }
  public JSONObject getJSONObject(int index) throws JSONException { throw new UnsupportedOperationException(); }
  public JSONArray getJSONArray(int index) throws JSONException { throw new UnsupportedOperationException(); }
}
