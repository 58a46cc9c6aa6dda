// Signature-only stub for compile checks (tests/test_sdk_compile.py), never packaged: the public signature as
// documented in the Android API reference (API level 35), bodies throw.
package org.json;
public class JSONObject {
  public JSONObject(String json) throws JSONException { throw new UnsupportedOperationException(); }
  public boolean has(String name) { throw new UnsupportedOperationException(); }
  public boolean isNull(String name) { throw new UnsupportedOperationException(); }
  public Object get(String name) throws JSONException { throw new UnsupportedOperationException(); }
  public String getString(String name) throws JSONException { throw new UnsupportedOperationException(); }
  public double getDouble(String name) throws JSONException { throw new UnsupportedOperationException(); }
  public int getInt(String name) throws JSONException { throw new UnsupportedOperationException(); }
  public boolean getBoolean(String name) throws JSONException { throw new UnsupportedOperationException(); }
  public long getLong(String name) throws JSONException { throw new UnsupportedOperationException(); }
  public JSONObject getJSONObject(String name) throws JSONException { throw new UnsupportedOperationException(); }
  public JSONArray getJSONArray(String name) throws JSONException { throw new UnsupportedOperationException(); }
  public JSONObject optJSONObject(String name) { throw new UnsupportedOperationException(); }
  public JSONArray optJSONArray(String name) { throw new UnsupportedOperationException(); }
  public String optString(String name) { throw new UnsupportedOperationException(); }
  public java.util.Iterator<String> keys() { throw new UnsupportedOperationException(); }
}
